"""What a background snapshot leaves the serving process to do: the forked child runs at low
CPU priority and sends its chunks compressed; the log is truncated in transactions of about
`_DELETE_TXN_BYTES` (an append waits for one of them at most)."""

import os
import sqlite3
import zlib

import pytest
from state_fixtures import job
from test_durability import _dump, _populate

from yurt.state import StateSnapshot, StateStore, persist
from yurt.state.commands import JobRegister
from yurt.state.persist import decode_tables, encode_tables
from yurt.state.sqlite import SqliteLog
from yurt.state.sqlite import log as sqlite_log

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _child_priority(monkeypatch, store: StateStore) -> tuple[int, int]:
    """The scheduling policy and nice value the forked child encodes under (it sends them as its one chunk)."""
    monkeypatch.setattr(persist, "encode_tables",
                        lambda tables, private=False: iter([f"{os.sched_getscheduler(0)} {os.nice(0)}".encode()]))
    child = persist.ForkedSnapshot(store._tables)
    try:
        chunks = list(child.chunks())
    finally:
        child.close()
    assert child.exit_code == 0 and len(chunks) == 1
    policy, nice = zlib.decompress(chunks[0]).split()
    return int(policy), int(nice)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_the_child_encodes_at_low_priority_unless_told_otherwise(tmp_path, monkeypatch):
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    _populate(store, rounds=1)
    ours = (os.sched_getscheduler(0), os.nice(0))
    if ours[0] == os.SCHED_BATCH:
        pytest.skip("the tests themselves run at SCHED_BATCH")
    # (the kernel caps niceness at 19: a suite started under `nice` still sees the child lower)
    assert _child_priority(monkeypatch, store) == (os.SCHED_BATCH, min(19, ours[1] + persist.CHILD_NICE))
    monkeypatch.setattr(persist, "CHILD_PRIORITY", "normal")
    assert _child_priority(monkeypatch, store) == ours
    assert (os.sched_getscheduler(0), os.nice(0)) == ours  # the parent's own priority never changes
    store.close()


def test_a_forked_snapshot_is_stored_compressed_and_restores_exactly(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    _populate(store, rounds=6)
    plain = list(encode_tables(store._tables))
    index = store.write_snapshot()
    assert store.last_snapshot_child.exit_code == 0
    snap_index, chunks = store._backend.latest_snapshot()
    chunks = list(chunks)
    assert snap_index == index and len(chunks) == len(plain)
    assert all(c[0] == 0x78 for c in chunks)
    assert [zlib.decompress(c) for c in chunks] == plain
    assert sum(map(len, chunks)) < sum(map(len, plain)) / 2
    live = _dump(store.snapshot())
    assert _dump(StateSnapshot(decode_tables(chunks))) == live
    store.apply(JobRegister(job=job("after-the-snapshot")))
    live = _dump(store.snapshot())
    store.close()
    reopened = StateStore.open(str(tmp_path))
    assert reopened._snapshot_index == index and _dump(reopened.snapshot()) == live
    reopened.close()


def test_plain_and_compressed_chunks_both_decode(tmp_path):
    """Snapshots written before compression (and by the thread path) stay readable."""
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=False)
    _populate(store, rounds=2)
    plain = list(encode_tables(store._tables))
    assert all(c[0] != 0x78 for c in plain)
    mixed = [zlib.compress(c, 1) if n % 2 else c for n, c in enumerate(plain)]
    assert _dump(StateSnapshot(decode_tables(mixed))) == _dump(store.snapshot())
    index = store.write_snapshot()  # the thread path: stored as encoded
    assert store.last_snapshot_child is None
    assert list(store._backend.latest_snapshot()[1]) == plain
    store.close()
    reopened = StateStore.open(str(tmp_path))
    assert reopened._snapshot_index == index and _dump(reopened.snapshot()) == _dump(StateSnapshot(decode_tables(plain)))
    reopened.close()


def test_the_log_is_truncated_about_delete_txn_bytes_per_transaction(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_log, "_DELETE_TXN_BYTES", 10_000)
    deletes: list[str] = []
    real_connect = sqlite_log._connect

    def traced(path, durable):
        conn = real_connect(path, durable)
        conn.set_trace_callback(lambda sql: deletes.append(sql) if sql.startswith("DELETE FROM log") else None)
        return conn

    monkeypatch.setattr(sqlite_log, "_connect", traced)
    backend = SqliteLog(str(tmp_path / "state.db"))
    sizes = {i: 4_000 for i in range(1, 11)} | {11: 25_000, 12: 100, 13: 100, 14: 100}
    backend.append([(i, bytes(size)) for i, size in sizes.items()])
    backend.save_snapshot(13, [b"chunk"])
    # two 4,000-byte rows per transaction (a third passes 10,000), the 25,000-byte row alone,
    # then the rest up to the snapshot's index; row 14 stays
    assert [int(sql.rsplit("<=", 1)[1]) for sql in deletes] == [2, 4, 6, 8, 10, 11, 13]
    assert list(backend.entries_after(0)) == [(14, bytes(100))]
    assert backend.latest_snapshot()[0] == 13
    backend.close()
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT COUNT(*) FROM log").fetchone()[0] == 1
    db.close()


def test_old_snapshot_chunks_are_deleted_in_pieces_too(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_log, "_DELETE_TXN_BYTES", 1_000)
    backend = SqliteLog(str(tmp_path / "state.db"))
    backend.append([(1, b"a"), (2, b"b")])
    backend.save_snapshot(1, [bytes(600)] * 5)
    backend.save_snapshot(2, [bytes(300)] * 3)
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT snap_index, COUNT(*) FROM snapshot_chunk GROUP BY snap_index").fetchall() == [(2, 3)]
    db.close()
    index, chunks = backend.latest_snapshot()
    assert index == 2 and list(chunks) == [bytes(300)] * 3
    backend.close()


def test_truncating_the_log_does_not_rewrite_the_freed_pages(tmp_path):
    """With SQLite's secure_delete (on in Debian's build) a deleted row's pages are zeroed
    through the WAL: as many bytes written as deleted."""
    backend = SqliteLog(str(tmp_path / "state.db"))
    assert backend._conn.execute("PRAGMA secure_delete").fetchone()[0] == 0
    backend.append([(i, os.urandom(200_000)) for i in range(1, 21)])  # 4 MB, below the checkpoint threshold
    wal = tmp_path / "state.db-wal"
    before = wal.stat().st_size
    backend.save_snapshot(20, [b"chunk"])
    assert list(backend.entries_after(0)) == []
    assert wal.stat().st_size - before < 1_000_000  # the freelist's pages, not the 4 MB of rows
    backend.close()
