"""The HA log backend: the command log and state snapshots in an etcd cluster.

Keys under `prefix` (e.g. `/yurt`):
- `log/<index, 20 digits>`: one command per key, written only by `append`.
- `head`: the highest index ever appended (survives the log's truncation).
- `snapshot`: JSON `{"index", "parts", "revision"}` of the newest complete snapshot; its
  chunks live under `snapshot/<index>/<seq>/<part>` (a chunk is split into parts of at most
  `PART_SIZE` bytes to stay under etcd's request size limit).
- `leader`, `members/<name>`: see `yurt.server.leadership`.

Appends are one transaction that compares `head` with the index before the first entry (so
the log has no gaps, no duplicates, and two writers cannot interleave) and, when the backend
is `guarded`, compares the leader key's ModRevision with the one this server won the election
with: a deposed leader (its lease expired, so the key is gone or re-created by another server)
can no longer append or snapshot. An unguarded backend (tests, single writer) skips that compare.

A snapshot is written part by part, then made visible by one transaction that writes
`snapshot`, deletes the log up to its index and the older snapshot's parts; etcd's history is
then compacted up to the previous snapshot's revision (watchers that far behind re-read).
"""

import itertools
import json
import logging
from collections.abc import Iterable, Iterator

from .gateway import EtcdError, Gateway, b64, prefix_end, unb64

log = logging.getLogger(__name__)

PART_SIZE = 512 * 1024
MAX_TXN_BYTES = 1024 * 1024  # etcd's default request limit is 1.5 MiB
MAX_TXN_OPS = 100  # etcd's default --max-txn-ops is 128
_PAGE = 256


class NotLeaderError(EtcdError):
    """This server no longer holds the leader key it was elected with."""


class LogConflict(EtcdError, ValueError):
    """The entries do not follow the logged head (duplicate or gap)."""


def _index_key(index: int) -> str:
    return f"{index:020d}"


class EtcdLog:
    def __init__(self, endpoints: list[str], prefix: str = "/yurt", timeout: float = 5.0,
                 guarded: bool = False) -> None:
        self.endpoints = list(endpoints)
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.timeout = timeout
        self.guarded = guarded
        self._guard: tuple[str, int] | None = None
        self._gw = Gateway(self.endpoints, timeout)

    # -- keys ------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def log_key(self, index: int) -> str:
        return self.key("log/" + _index_key(index))

    # -- leader guard ----------------------------------------------------
    def set_guard(self, leader_key: str, mod_revision: int) -> None:
        """Allow appends while `leader_key` still has `mod_revision` (this server's election)."""
        self._guard = (leader_key, mod_revision)

    def clear_guard(self) -> None:
        self._guard = None

    def _guard_compares(self) -> list[dict]:
        if not self.guarded:
            return []
        guard = self._guard
        if guard is None:
            raise NotLeaderError("not the leader: this server may not write the log")
        return [{"key": b64(guard[0]), "target": "MOD", "result": "EQUAL", "mod_revision": str(guard[1])}]

    def _txn(self, compares: list[dict], puts: list[tuple[str, bytes]], extra: list[dict] = ()) -> dict:
        success = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in puts] + list(extra)
        return self._gw.call("/v3/kv/txn", {"compare": compares, "success": success})

    # -- log -------------------------------------------------------------
    def append(self, entries: list[tuple[int, bytes]]) -> None:
        """Append entries that directly follow the head; all or none (in groups that fit one
        etcd transaction: a batch larger than that is committed group by group)."""
        if not entries:
            return
        for (a, _), (b, _) in itertools.pairwise(entries):
            if b != a + 1:
                raise LogConflict(f"log entries must be consecutive: {a} then {b}")
        for group in _groups(entries):
            self._append_group(group)

    def _append_group(self, entries: list[tuple[int, bytes]]) -> None:
        first, last = entries[0][0], entries[-1][0]
        head_key = self.key("head")
        if first == 1:
            head_compare = {"key": b64(head_key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            head_compare = {"key": b64(head_key), "target": "VALUE", "result": "EQUAL", "value": b64(str(first - 1))}
        compares = self._guard_compares() + [head_compare]
        puts = [(self.log_key(i), data) for i, data in entries] + [(head_key, str(last).encode())]
        resp = self._txn(compares, puts)
        if resp.get("succeeded"):
            return
        if self.guarded and not self._guard_holds():
            raise NotLeaderError("not the leader any more: the leader key changed, the append was refused")
        raise LogConflict(f"log entry {first} does not follow the log's head {self.last_index()}")

    def _guard_holds(self) -> bool:
        guard = self._guard
        if guard is None:
            return False
        kvs = self._gw.call("/v3/kv/range", {"key": b64(guard[0])}).get("kvs") or []
        return bool(kvs) and int(kvs[0].get("mod_revision", 0)) == guard[1]

    def read_after(self, index: int) -> tuple[list[tuple[int, bytes]], int]:
        """The logged entries above `index` and the etcd revision they were read at."""
        entries: list[tuple[int, bytes]] = []
        start, end = self.log_key(index + 1), prefix_end(self.key("log/"))
        revision = 0
        while True:
            body = {"key": b64(start), "range_end": b64(end), "limit": str(_PAGE)}
            if revision:
                body["revision"] = str(revision)
            resp = self._gw.call("/v3/kv/range", body)
            revision = revision or int(resp["header"]["revision"])
            kvs = resp.get("kvs") or []
            for kv in kvs:
                key = unb64(kv["key"]).decode()
                entries.append((int(key.rsplit("/", 1)[1]), unb64(kv.get("value"))))
            if not resp.get("more"):
                return entries, revision
            start = unb64(kvs[-1]["key"]).decode() + "\0"

    def entries_after(self, index: int) -> Iterator[tuple[int, bytes]]:
        entries, _ = self.read_after(index)
        yield from entries

    def last_index(self) -> int:
        kvs = self._gw.call("/v3/kv/range", {"key": b64(self.key("head"))}).get("kvs") or []
        return int(unb64(kvs[0].get("value"))) if kvs else 0

    # -- snapshots -------------------------------------------------------
    def _snapshot_meta(self) -> tuple[dict | None, int]:
        resp = self._gw.call("/v3/kv/range", {"key": b64(self.key("snapshot"))})
        kvs = resp.get("kvs") or []
        meta = json.loads(unb64(kvs[0]["value"])) if kvs else None
        return meta, int(resp["header"]["revision"])

    def latest_snapshot(self) -> tuple[int, Iterator[bytes]] | None:
        meta, revision = self._snapshot_meta()
        if meta is None:
            return None
        index, parts = meta["index"], meta["parts"]
        data_prefix = self.key(f"snapshot/{_index_key(index)}/")

        def read() -> Iterator[bytes]:
            values: list[bytes] = []
            start = data_prefix
            while True:
                resp = self._gw.call("/v3/kv/range", {"key": b64(start), "range_end": b64(prefix_end(data_prefix)),
                                                      "limit": str(_PAGE), "revision": str(revision)})
                kvs = resp.get("kvs") or []
                values.extend(unb64(kv.get("value")) for kv in kvs)
                if not resp.get("more"):
                    break
                start = unb64(kvs[-1]["key"]).decode() + "\0"
            if len(values) != sum(parts):
                raise ValueError(f"snapshot {index} has {len(values)} parts, expected {sum(parts)}")
            pos = 0
            for count in parts:
                yield b"".join(values[pos:pos + count])
                pos += count

        return index, read()

    def save_snapshot(self, index: int, chunks: Iterable[bytes]) -> None:
        """Write the snapshot at `index`, then truncate the log up to it. Safe from another
        thread (own connection). A follower (guarded, not leader) writes nothing."""
        if self.guarded and self._guard is None:
            return
        gw = Gateway(self.endpoints, self.timeout)
        data_prefix = self.key(f"snapshot/{_index_key(index)}/")
        try:
            parts = self._write_parts(gw, data_prefix, chunks)
            previous, _ = self._snapshot_meta()
            meta = {"index": index, "parts": parts}
            deletes = [
                {"request_delete_range": {"key": b64(self.log_key(0)), "range_end": b64(self.log_key(index + 1))}},
                {"request_delete_range": {"key": b64(self.key("snapshot/")),
                                          "range_end": b64(self.key("snapshot/" + _index_key(index)))}},
            ]
            success = [{"request_put": {"key": b64(self.key("snapshot")), "value": b64(json.dumps(meta))}}] + deletes
            resp = gw.call("/v3/kv/txn", {"compare": self._guard_compares(), "success": success})
            if not resp.get("succeeded"):
                raise NotLeaderError("not the leader any more: the snapshot was not recorded")
            if previous is not None and previous.get("revision"):
                self._compact(gw, previous["revision"])
            meta["revision"] = int(resp["header"]["revision"])
            gw.call("/v3/kv/put", {"key": b64(self.key("snapshot")), "value": b64(json.dumps(meta))})
        except BaseException:
            _delete_quietly(gw, data_prefix, self)
            raise
        finally:
            gw.close()

    def _write_parts(self, gw: Gateway, data_prefix: str, chunks: Iterable[bytes]) -> list[int]:
        parts: list[int] = []
        pending: list[dict] = []
        size = 0
        for seq, chunk in enumerate(chunks):
            pieces = [chunk[i:i + PART_SIZE] for i in range(0, len(chunk), PART_SIZE)] or [b""]
            parts.append(len(pieces))
            for n, piece in enumerate(pieces):
                key = f"{data_prefix}{seq:010d}/{n:06d}"
                pending.append({"request_put": {"key": b64(key), "value": b64(piece)}})
                size += len(piece)
                if size >= MAX_TXN_BYTES // 2 or len(pending) >= MAX_TXN_OPS:
                    self._put_parts(gw, pending)
                    pending, size = [], 0
        if pending:
            self._put_parts(gw, pending)
        return parts

    def _put_parts(self, gw: Gateway, puts: list[dict]) -> None:
        resp = gw.call("/v3/kv/txn", {"compare": self._guard_compares(), "success": puts})
        if not resp.get("succeeded"):
            raise NotLeaderError("not the leader any more: snapshot parts refused")

    @staticmethod
    def _compact(gw: Gateway, revision: int) -> None:
        try:
            gw.call("/v3/kv/compaction", {"revision": str(revision)})
        except EtcdError as exc:  # already compacted further: fine
            log.debug("etcd compaction at %d: %s", revision, exc)

    def close(self) -> None:
        self._gw.close()


def _groups(entries: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    group: list[tuple[int, bytes]] = []
    size = 0
    for entry in entries:
        if group and (len(group) >= MAX_TXN_OPS or size + len(entry[1]) > MAX_TXN_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += len(entry[1])
    yield group


def _delete_quietly(gw: Gateway, data_prefix: str, backend: EtcdLog) -> None:
    """Remove the parts of a snapshot that was not completed (unless it became the visible one)."""
    try:
        meta, _ = backend._snapshot_meta()
        if meta is not None and data_prefix.endswith(_index_key(meta["index"]) + "/"):
            return
        gw.call("/v3/kv/deleterange", {"key": b64(data_prefix), "range_end": b64(prefix_end(data_prefix))})
    except EtcdError:
        log.warning("could not remove the parts of an unfinished snapshot under %s", data_prefix)
