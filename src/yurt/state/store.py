"""`StateStore`: the log, the FSM, snapshots and watchers together.

Writing a command: the FSM applies it to a private transaction (nothing visible yet;
an invalid command raises `StateError` and leaves no trace), the command is appended
to the log and committed, then the transaction's tables become the committed state,
watchers of the changed tables wake and listeners run. On open, the newest snapshot
and the log after it are replayed through the same FSM.

Cost (`tests/state/bench_store.py`, in memory, on a 2-CPU dev machine shared with
other work, 2026-11-26): 100,000 alloc placements as 1,000 `PlanApply` commands of
100 allocs, with a snapshot taken after every command (1,000 snapshots): 3.5-6.5 s of
CPU after `relax_gc()` depending on the machine's load (35-65 us per placement: every
command copies the trie paths it touches), 6-12 s with Python's default GC settings;
the 1,000 snapshots together took 10-60 ms. With SQLite the apply cost is about the
same; reopening a 100k-alloc log (no snapshot yet) takes about 3 s, and writing or
restoring a 100k-alloc snapshot about 2.5 s each.
"""

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from .backend import LogBackend
from .commands import Command, decode_command, encode_command
from .cow import new_generation
from .fsm import apply_command
from .persist import ForkedSnapshot, decode_tables, encode_tables
from .sqlite import SqliteLog
from .tables import TABLES, StateSnapshot, Tables
from .txn import StateError, Txn
from .watch import ChangeWatchers

log = logging.getLogger(__name__)

DEFAULT_SNAPSHOT_EVERY = 8192
# With `fork_snapshots` left to its default, a state of fewer objects (allocs, evals, jobs,
# nodes) is encoded in the snapshot thread: fork() costs the serving process ~0.1 ms per MB of
# its RSS at once plus a copy-on-write fault for each page it writes while the child lives,
# whatever the state's size, and a small state encodes in less (~12 us of GIL per alloc:
# 50,000 objects ~0.6 s). W6 short (a few thousand objects in a 170 MB server): forked, its
# wake p99 was 98-100 ms, in the thread 43-52 ms; W1 full (1,000,000 allocs): in the thread
# ~45 s of the GIL per snapshot.
FORK_MIN_OBJECTS = 50_000
_REPLAY_BATCH = 512

Listener = Callable[[int, Command], None]


def fork_snapshots_default() -> bool:
    """Snapshots are encoded in a forked child where `os.fork` exists, unless the
    environment says `YURT_SNAPSHOT_FORK=0` (then in a thread of this process)."""
    setting = os.environ.get("YURT_SNAPSHOT_FORK", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    return hasattr(os, "fork")


class LogGap(Exception):
    """Replicated entries skip an index: the follower must reload from the backend."""


class StateStore:
    def __init__(
        self,
        backend: LogBackend | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        background_snapshots: bool = True,
        fork_snapshots: bool | None = None,
    ) -> None:
        self._backend = backend
        self._tables = Tables()
        self._gen = 0  # every transaction (and restore) takes a new one: `cow.new_generation`
        self._write_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._watchers = ChangeWatchers()
        self.snapshot_every = snapshot_every
        self.background_snapshots = background_snapshots
        # encode snapshots in a forked child (`persist.ForkedSnapshot`); None: the default
        self.fork_snapshots = fork_snapshots_default() if fork_snapshots is None else fork_snapshots and hasattr(os, "fork")
        # fork only for a state this large (explicitly asked for: always)
        self.fork_min_objects = FORK_MIN_OBJECTS if fork_snapshots is None else 0
        self.last_snapshot_child = None  # the newest `ForkedSnapshot` (its exit code, rusage): for benchmarks
        self._snapshot_index = 0
        self._snapshot_thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        data_dir: str | None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        background_snapshots: bool = True,
        durable: bool = False,
        fork_snapshots: bool | None = None,
    ) -> "StateStore":
        """`None`: in memory. Else the log lives at `<data_dir>/server/state.db` and
        the state is restored from its newest snapshot plus the log after it."""
        if data_dir is None:
            return cls(None, snapshot_every, background_snapshots, fork_snapshots)
        return cls.from_backend(
            SqliteLog.in_data_dir(data_dir, durable), snapshot_every, background_snapshots, fork_snapshots)

    @classmethod
    def from_backend(
        cls,
        backend: LogBackend,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        background_snapshots: bool = True,
        fork_snapshots: bool | None = None,
    ) -> "StateStore":
        """A store over any log backend (e.g. etcd), restored from what it holds."""
        store = cls(backend, snapshot_every, background_snapshots, fork_snapshots)
        store._restore()
        return store

    # -- reads ---------------------------------------------------------
    @property
    def latest_index(self) -> int:
        return self._tables.index

    def snapshot(self) -> StateSnapshot:
        """A consistent, immutable view of the committed state; O(1)."""
        return StateSnapshot(self._tables)

    def table_index(self, name: str) -> int:
        return self._tables.indexes.get(name, 0)

    def max_table_index(self, tables: Iterable[str]) -> int:
        indexes = self._tables.indexes
        return max((indexes.get(t, 0) for t in tables), default=0)

    # -- writes --------------------------------------------------------
    def apply(self, command: Command) -> int:
        """Log, commit and apply one command; returns its index."""
        return self.apply_batch([command])[-1]

    def apply_batch(self, commands: list[Command]) -> list[int]:
        """Apply several commands with one log transaction; all or none of them."""
        if not commands:
            return []
        if self._closed:
            raise StateError("the state store is closed")
        with self._write_lock:
            base = self._tables
            self._gen = new_generation()
            tables, indexes = base, []
            changed: set[str] = set()
            for command in commands:
                txn = Txn(tables, self._gen, tables.index + 1)
                apply_command(txn, command)
                tables = txn.commit()
                indexes.append(txn.index)
                changed |= txn.touched
            if self._backend is not None:
                self._backend.append([(i, encode_command(c)) for i, c in zip(indexes, commands)])
            self._tables = tables
        # (a batch of status reports writes no node's version map: the RPC watches sleep on)
        self._watchers.notify(changed, tables.allocs_by_node is not base.allocs_by_node)
        for index, command in zip(indexes, commands):
            self._run_listeners(index, command)
        self._maybe_snapshot()
        return indexes

    def apply_replicated(self, entries: list[tuple[int, bytes]]) -> int:
        """HA followers: apply entries another server logged (those at or below the current
        index are skipped); raises `LogGap` if they do not follow it. Returns the new index."""
        commands = [(index, decode_command(data)) for index, data in entries]
        applied: list[tuple[int, Command]] = []
        changed: set[str] = set()
        with self._write_lock:
            tables = self._tables
            self._gen = new_generation()
            for index, command in commands:
                if index <= tables.index:
                    continue
                if index != tables.index + 1:
                    self._tables = tables
                    raise LogGap(f"log entry {index} does not follow the state at {tables.index}")
                txn = Txn(tables, self._gen, index)
                try:
                    apply_command(txn, command)
                    tables = txn.commit()
                    changed |= txn.touched
                except StateError as err:
                    log.error("replicated log entry %d failed, skipped: %s", index, err)
                    tables = _with_index(tables, index)
                applied.append((index, command))
            self._tables = tables
        self._watchers.notify(changed)
        for index, command in applied:
            self._run_listeners(index, command)
        return tables.index

    def reload(self) -> None:
        """HA followers that fell behind a snapshot: restore from the backend again."""
        with self._write_lock:
            self._restore()
        self._watchers.notify(TABLES + self._watchers.watched())  # and per-node watches

    def _run_listeners(self, index: int, command: Command) -> None:
        for fn in list(self._listeners):
            try:
                fn(index, command)
            except Exception:
                log.exception("state listener %r failed at index %d", fn, index)

    def add_listener(self, fn: Listener) -> None:
        """`fn(index, command)` after each applied command."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    async def wait_for_change(self, tables: Iterable[str], min_index: int, timeout: float) -> int:
        """Return as soon as the max index of `tables` is > `min_index` (or at `timeout`
        seconds), with that max index."""
        tables = tuple(tables) or TABLES  # no tables named: any change
        return await self._watchers.wait(lambda: self.max_table_index(tables), tables, min_index, timeout)

    def watch(self, tables: tuple[str, ...], waiter, keep: bool = False) -> None:
        """Call `waiter.wake()` at the next change to `tables` (`watch.CallbackWaiter`; `keep`:
        at every change until `unwatch`)."""
        self._watchers.watch(tables, waiter, keep)

    def unwatch(self, waiter) -> None:
        self._watchers.forget(waiter)

    # -- durability ----------------------------------------------------
    def _restore(self) -> None:
        assert self._backend is not None
        gc_was_enabled = gc.isenabled()
        gc.disable()  # restoring builds millions of acyclic objects: collecting is wasted work
        try:
            found = self._backend.latest_snapshot()
            tables = Tables()
            if found is not None:
                snap_index, chunks = found
                tables = decode_tables(chunks)
                self._snapshot_index = snap_index
            replayed = 0
            batch: list[tuple[int, bytes]] = []
            for entry in self._backend.entries_after(tables.index):
                batch.append(entry)
                if len(batch) >= _REPLAY_BATCH:
                    tables = self._replay(tables, batch)
                    replayed += len(batch)
                    batch = []
            tables = self._replay(tables, batch)
            replayed += len(batch)
            self._tables = tables
        finally:
            if gc_was_enabled:
                gc.enable()
        log.info("state restored at index %d (snapshot %d, %d log entries)", tables.index, self._snapshot_index, replayed)

    def _replay(self, tables: Tables, entries: list[tuple[int, bytes]]) -> Tables:
        """Apply logged entries under one generation; one at a time if one of them fails."""
        commands = [(index, decode_command(data)) for index, data in entries]
        self._gen = new_generation()
        try:
            result = tables
            for index, command in commands:
                txn = Txn(result, self._gen, index)
                apply_command(txn, command)
                result = txn.commit()
            return result
        except StateError:
            pass
        for index, command in commands:
            self._gen = new_generation()
            txn = Txn(tables, self._gen, index)
            try:
                apply_command(txn, command)
            except StateError as err:
                log.error("replaying log entry %d failed, skipped: %s", index, err)
                tables = _with_index(tables, index)
                continue
            tables = txn.commit()
        return tables

    def _maybe_snapshot(self) -> None:
        if self._backend is None or self.snapshot_every <= 0:
            return
        if self._tables.index - self._snapshot_index < self.snapshot_every:
            return
        if self._snapshot_thread is not None and self._snapshot_thread.is_alive():
            return
        if self.background_snapshots:
            tables = self._tables
            self._snapshot_index = tables.index
            self._snapshot_thread = threading.Thread(
                target=self._save_snapshot, args=(tables,), name="yurt-state-snapshot", daemon=True
            )
            self._snapshot_thread.start()
        else:
            self.write_snapshot()

    def write_snapshot(self) -> int:
        """Write a snapshot of the committed state now and truncate the log; returns its index."""
        if self._backend is None:
            return 0
        self._wait_for_snapshot_thread()
        tables = self._tables
        self._snapshot_index = tables.index
        self._save_snapshot(tables)
        return tables.index

    def _save_snapshot(self, tables: Tables) -> None:
        """Encode `tables` (committed, immutable) and hand the chunks to the backend, which
        records the snapshot and truncates the log only once it has them all. In fork mode
        the encoding runs in a child process (`persist.ForkedSnapshot`): this thread only
        reads the pipe and stores the bytes (both release the GIL), so the encoding's CPU and
        GIL time leave the serving process (what is left: fork() copying page tables). Any
        failure is logged; the log stays, and the next snapshot is tried `snapshot_every`
        entries later."""
        assert self._backend is not None
        started = time.monotonic()
        try:
            if not self.fork_snapshots or _object_count(tables) < self.fork_min_objects:
                self._backend.save_snapshot(tables.index, encode_tables(tables))
                log.info("state snapshot at index %d written in %.1f s", tables.index, time.monotonic() - started)
                return
            child = self.last_snapshot_child = ForkedSnapshot(tables)
            try:
                self._backend.save_snapshot(tables.index, child.chunks())
            finally:
                child.close()
            usage = child.rusage
            log.info("state snapshot at index %d written in %.1f s (fork %.0f ms, child CPU %.1f s)", tables.index,
                     time.monotonic() - started, child.fork_s * 1000,
                     usage.ru_utime + usage.ru_stime if usage is not None else -1.0)
        except Exception:
            log.exception("writing the state snapshot at index %d failed (the log is kept)", tables.index)

    def _wait_for_snapshot_thread(self) -> None:
        thread = self._snapshot_thread
        if thread is not None:
            thread.join()
            self._snapshot_thread = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wait_for_snapshot_thread()
        if self._backend is not None:
            self._backend.close()


def relax_gc() -> None:
    """Make Python's cyclic GC cheap for a process holding a large state (call once in a
    server process, after opening the store): `yurt.gcpolicy.relax` (what is alive now
    is frozen, survivors of every collection are frozen, full collections walk all)."""
    from yurt import gcpolicy

    gcpolicy.relax()


def _object_count(tables: Tables) -> int:
    return len(tables.allocs) + len(tables.evals) + len(tables.jobs) + len(tables.nodes)


def _with_index(tables: Tables, index: int) -> Tables:
    """`tables` at `index`, after the command logged there failed. Its partial writes may
    remain in maps the generation owns, without their keys in a touch log: a new log
    lineage makes the scheduler's node table read every node again (`tables.log_touched`)."""
    new = tables.copy()
    new.index = index
    new.touch_log = (object(), index, ())
    return new
