"""SQLite (WAL) command log with chunked whole-state snapshots.

Tables:
- `log(idx, command)`: one row per applied command, `idx` = state index.
- `snapshot_chunk(snap_index, seq, data)` and `snapshot(snap_index, chunks)`: a snapshot
  is written chunk by chunk in short transactions (about `_SNAPSHOT_TXN_BYTES` each:
  an append waits for one of them at most), then made visible by inserting its
  `snapshot` row in a transaction that also drops the older `snapshot` rows. The log up
  to it and the older snapshots' chunks are then deleted about `_DELETE_TXN_BYTES` per
  transaction (deleting a row walks its overflow pages: one transaction for a whole log of
  big plans held the write lock for seconds, and 16 rows of W1's ~1.6 MB plans held each
  append up for tens of ms), paced by the sizes of the entries this process appended
  (kept in memory) or, for rows it has no sizes of, by reading them back. A half-written snapshot (crash) has no `snapshot` row
  and is ignored and cleaned up; so are the chunks of dropped snapshots, and log entries
  at or below the snapshot are never read again (`entries_after` starts above it).

`synchronous=NORMAL` in WAL mode: a committed append survives a crash of the
process (kill -9); `durable=True` selects `FULL` to survive power loss as well.

WAL checkpoints (copying committed pages from the WAL into the database file) run on a
background thread, not in the appending thread: after every `_CHECKPOINT_BYTES` appended
it runs a PASSIVE checkpoint on its own connection (it never blocks an append). The
appending connection keeps SQLite's automatic checkpoint as a backstop, at a larger WAL
(`_AUTOCHECKPOINT_PAGES`). Checkpoints do not change what is committed: an append is
durable when `append` returns, as before.
"""

import collections
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from itertools import islice, takewhile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, command BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_chunk (
    snap_index INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (snap_index, seq));
CREATE TABLE IF NOT EXISTS snapshot (snap_index INTEGER PRIMARY KEY, chunks INTEGER NOT NULL);
"""

log = logging.getLogger(__name__)

# an append waits for at most one of these transactions (plus SQLite's busy-handler sleep)
_SNAPSHOT_TXN_BYTES = 1 << 20  # snapshot chunk bytes written per transaction (a chunk is ~3.5 MB of allocs)
# log rows / old snapshot chunks deleted per transaction: as many as add up to this many bytes
# (at least one; `length()` of a blob reads no overflow page), at most `_DELETE_MAX_ROWS`
_DELETE_TXN_BYTES = 4 << 20
_DELETE_MAX_ROWS = 256
# (index, bytes) of at most this many entries appended since the last truncation are kept
# (~120 bytes each) to pace it; past that (snapshots off) they are dropped and the truncation
# reads the rows' sizes back from the log, as for entries another process appended
_APPENDED_MAX = 1 << 16
_PAGE_SIZE = 16384
# a 1,000-alloc plan appends ~1.6 MB; checkpointing in the appending thread cost ~1.2 ms
# per such append on average, in stalls of 20-25 ms (SQLite's default: at 1,000 WAL pages)
_CHECKPOINT_BYTES = 8 << 20
_AUTOCHECKPOINT_PAGES = 4000
_APPEND = "INSERT INTO log (idx, command) VALUES (?, ?)"


def _connect(path: str, durable: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    # 16 KiB pages for a new file (an existing one keeps its size): a 1,000-alloc plan is
    # ~1.6 MB, and appending it took 8-9 ms of CPU with 4 KiB pages, 4.5-6 ms with 16 KiB
    # (fewer overflow pages and WAL frames); a small command costs ~15 us more
    conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    # Debian's SQLite is built with SECURE_DELETE: every freed page is overwritten with zeros,
    # so truncating W1's 1.4 GB of logged plans wrote 1.4 GB to the WAL (and again at the
    # checkpoint). The log holds nothing a later reader of the file must not see.
    conn.execute("PRAGMA secure_delete=OFF")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    return conn


class SqliteLog:
    """The log backend at `<data_dir>/server/state.db`."""

    def __init__(self, path: str, durable: bool = False) -> None:
        self.path = path
        self._durable = durable
        try:
            self._conn = _connect(path, durable)
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise OSError(f"cannot open the state database {path}: {err}") from err
        # chunks of a snapshot that a crash left half-written
        self._conn.execute("DELETE FROM snapshot_chunk WHERE snap_index NOT IN (SELECT snap_index FROM snapshot)")
        self._conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        self._turns = _WriteTurns()
        # (index, bytes) of the entries this process appended and did not truncate yet, in
        # index order: the truncation after a snapshot paces its deletes from them instead
        # of reading the rows' sizes back from the log (a SELECT per piece, from a page cache
        # that every append in between made stale: a third of the truncation's CPU)
        self._appended: collections.deque[tuple[int, int]] = collections.deque()
        self._unchecked = 0  # bytes appended since the last checkpoint request
        self._checkpointer: _Checkpointer | None = None

    @classmethod
    def in_data_dir(cls, data_dir: str, durable: bool = False) -> "SqliteLog":
        server_dir = os.path.join(data_dir, "server")
        try:
            os.makedirs(server_dir, exist_ok=True)
        except OSError as err:
            raise OSError(f"cannot create the state directory {server_dir}: {err.strerror}") from err
        return cls(os.path.join(server_dir, "state.db"), durable)

    # -- log -----------------------------------------------------------
    def append(self, entries: list[tuple[int, bytes]]) -> None:
        """Append and commit entries (one transaction).

        One entry (nearly every append: a plan, a batch of client updates, an eval) is one
        autocommit INSERT: its own transaction, committed exactly as BEGIN IMMEDIATE + INSERT +
        COMMIT would be, but one statement, so the appending thread (the event loop) gives up
        and takes back the GIL once instead of three times, and ~15 us less CPU per small
        append (`bench/micro_log.py`). No other writer of this file runs in an append turn, so
        its read-to-write upgrade cannot meet a newer commit (SQLITE_BUSY_SNAPSHOT)."""
        if len(entries) != 1:
            sizes = [(index, len(data)) for index, data in entries]
            self._insert(self._conn, self._turns.append, _APPEND, entries, sum(size for _, size in sizes))
            self._appended.extend(sizes)
            return
        entry = entries[0]
        turns = self._turns
        turns.begin_append()
        try:
            self._conn.execute(_APPEND, entry)
            size = len(entry[1])
            self._appended.append((entry[0], size))
            self._written(size)
        finally:
            turns.end_append()

    def _insert(self, conn: sqlite3.Connection, turn, statement: str, rows: list[tuple], size: int) -> None:
        """Insert `rows` (`size` bytes) in one transaction, in a write turn."""
        with turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(statement, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._written(size)

    def _written(self, size: int) -> None:
        """Account `size` bytes committed (in a write turn); ask for a checkpoint."""
        if len(self._appended) > _APPENDED_MAX:
            self._appended.clear()  # (their rows are below the next one kept: read back)
        self._unchecked += size
        if self._unchecked >= _CHECKPOINT_BYTES:
            self._unchecked = 0
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self.path, self._durable)
            self._checkpointer.request()

    def entries_after(self, index: int) -> Iterator[tuple[int, bytes]]:
        cur = self._conn.execute("SELECT idx, command FROM log WHERE idx > ? ORDER BY idx", (index,))
        yield from cur

    def last_index(self) -> int:
        row = self._conn.execute("SELECT MAX(idx) FROM log").fetchone()
        return row[0] or 0

    def log_length(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]

    # -- snapshots -----------------------------------------------------
    def latest_snapshot(self) -> tuple[int, Iterator[bytes]] | None:
        row = self._conn.execute("SELECT snap_index, chunks FROM snapshot ORDER BY snap_index DESC LIMIT 1").fetchone()
        if row is None:
            return None
        snap_index, chunks = row

        def read() -> Iterator[bytes]:
            cur = self._conn.execute(
                "SELECT data FROM snapshot_chunk WHERE snap_index = ? ORDER BY seq", (snap_index,)
            )
            count = 0
            for (data,) in cur:
                count += 1
                yield data
            if count != chunks:
                raise ValueError(f"snapshot {snap_index} has {count} chunks, expected {chunks}")

        return snap_index, read()

    def save_snapshot(self, index: int, chunks: Iterable[bytes]) -> None:
        """Write a snapshot of the state at `index`, then truncate the log up to it.

        Safe to call from another thread: it uses its own connection (whose WAL checkpoints
        are the checkpointer thread's: one run in its COMMIT would hold up appends)."""
        conn = _connect(self.path, self._durable)
        try:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            with self._turns.background():
                conn.execute("DELETE FROM snapshot_chunk WHERE snap_index = ?", (index,))
            seq = 0
            pending: list[tuple[int, int, bytes]] = []
            size = 0
            for data in chunks:
                pending.append((index, seq, data))
                seq += 1
                size += len(data)
                if size >= _SNAPSHOT_TXN_BYTES:
                    self._write_chunks(conn, pending)
                    pending, size = [], 0
            if pending:
                self._write_chunks(conn, pending)
            with self._turns.background():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO snapshot (snap_index, chunks) VALUES (?, ?)", (index, seq))
                conn.execute("DELETE FROM snapshot WHERE snap_index < ?", (index,))
                conn.execute("COMMIT")
            self._delete_in_pieces(
                conn, "SELECT rowid, length(data) FROM snapshot_chunk WHERE snap_index < ? ORDER BY rowid LIMIT ?",
                "DELETE FROM snapshot_chunk WHERE snap_index < ? AND rowid <= ?", index)
            self._truncate_log(conn, index)
        finally:
            conn.close()

    def _write_chunks(self, conn: sqlite3.Connection, rows: list[tuple[int, int, bytes]]) -> None:
        self._insert(conn, self._turns.background, "INSERT INTO snapshot_chunk (snap_index, seq, data) VALUES (?, ?, ?)",
                     rows, sum(len(row[2]) for row in rows))

    def _truncate_log(self, conn: sqlite3.Connection, index: int) -> None:
        """Delete the log up to `index`, `_DELETE_TXN_BYTES` (at most `_DELETE_MAX_ROWS`
        rows) per transaction: the rows this process did not append (or no longer keeps the
        sizes of) as `_delete_in_pieces` finds them, then the appended ones by their kept sizes."""
        appended = self._appended
        try:
            first = appended[0][0]
        except IndexError:
            first = index + 1
        self._delete_in_pieces(
            conn, "SELECT idx, length(command) FROM log WHERE idx <= ? ORDER BY idx LIMIT ?",
            "DELETE FROM log WHERE idx <= ?2", min(index, first - 1))  # ?2: the last key
        # (a delete is `idx <= last` with `last <= index` whatever the kept sizes say: they
        # only pace it; an append that drops them meanwhile leaves the rest to the next truncation)
        while True:
            try:  # (a C-level copy: no Python code runs, so no append lands in between)
                rows = list(islice(appended, _DELETE_MAX_ROWS))
            except RuntimeError:  # (appended to while read all the same: done)
                return
            rows = list(takewhile(lambda entry: entry[0] <= index, rows))
            if not rows:
                return
            last = _piece_end(rows)
            with contextlib.suppress(IndexError):
                while appended[0][0] <= last:
                    appended.popleft()
            with self._turns.background():  # one statement, its own transaction: one GIL hand-off
                conn.execute("DELETE FROM log WHERE idx <= ?", (last,))

    def _delete_in_pieces(self, conn: sqlite3.Connection, select: str, delete: str, index: int) -> None:
        """Delete the rows `select` finds (key, size; in key order), the first ones adding up
        to `_DELETE_TXN_BYTES` per transaction: `delete` gets `index` and the last key. (No
        other writer runs during a turn, so the autocommit statement's read-to-write upgrade
        cannot meet a newer snapshot.)"""
        while True:
            rows = conn.execute(select, (index, _DELETE_MAX_ROWS)).fetchall()
            if not rows:
                return
            with self._turns.background():  # one statement, its own transaction: one GIL hand-off
                conn.execute(delete, (index, _piece_end(rows)))

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._conn.close()


def _piece_end(rows: list[tuple[int, int | None]]) -> int:
    """The last key of one delete transaction over `rows` ((key, size) in key order, at
    least one): the first row, then the next ones while they add up to `_DELETE_TXN_BYTES`,
    at most `_DELETE_MAX_ROWS` rows."""
    last, size = rows[0]
    for key, length in rows[1:_DELETE_MAX_ROWS]:
        size += length or 0
        if size > _DELETE_TXN_BYTES:
            break
        last = key
    return last


class _WriteTurns:
    """Every write transaction of this process takes a turn: appends first, then the
    snapshot writer's, one transaction at a time, and never while an append waits. Without
    it an append polled in SQLite's busy handler (sleeps of up to 100 ms) and kept losing to
    the back-to-back snapshot transactions: small commits fell to a third of their rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = threading.Condition(threading.Lock())
        self._appends_waiting = 0

    def begin_append(self) -> None:
        """Take an append turn (`end_append` gives it back). Uncontended (the common case),
        one lock acquire; else announced as waiting, so that no new background turn starts."""
        if self._lock.acquire(blocking=False):
            return
        with self._state:
            self._appends_waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._state:
                self._appends_waiting -= 1
                if not self._appends_waiting:
                    self._state.notify_all()

    def end_append(self) -> None:
        self._lock.release()

    @contextlib.contextmanager
    def append(self) -> Iterator[None]:
        self.begin_append()
        try:
            yield
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        with self._state:
            while self._appends_waiting:
                self._state.wait()
        with self._lock:  # an append arriving now waits for this one transaction
            yield


class _Checkpointer:
    """A thread that runs a PASSIVE WAL checkpoint each time it is asked (requests made
    while one runs are merged into the next)."""

    def __init__(self, path: str, durable: bool) -> None:
        self._path, self._durable = path, durable
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = _connect(self._path, self._durable)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as err:  # the next request (or the backstop) checkpoints
                    log.debug("WAL checkpoint of %s failed: %s", self._path, err)
        finally:
            conn.close()
