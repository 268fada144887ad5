"""Snapshots encoded in a forked child (`persist.ForkedSnapshot`): exact while writes go on,
nothing recorded and the log kept when the child dies, the thread path when fork is off."""

import logging
import os
import signal
import socket
import sqlite3
import threading
import time

import pytest
from state_fixtures import job
from test_durability import _dump, _populate

from yurt.state import StateSnapshot, StateStore, persist
from yurt.state.commands import JobRegister
from yurt.state.persist import decode_tables, encode_tables

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _log_rows(tmp_path) -> tuple[int, int]:
    db = sqlite3.connect(tmp_path / "server" / "state.db")
    try:
        return db.execute("SELECT COUNT(*), COALESCE(MIN(idx), 0) FROM log").fetchone()
    finally:
        db.close()


def _patch_child_encoder(monkeypatch, wrap) -> None:
    """Replace what the forked child runs (the parent never calls it in fork mode)."""
    real = persist.encode_tables
    monkeypatch.setattr(persist, "encode_tables", lambda tables, private=False: wrap(real(tables, private)))


def test_forked_snapshot_taken_while_writes_continue_restores_the_state_at_its_index(tmp_path, monkeypatch):
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    _populate(store, rounds=4)

    def slow(chunks):
        time.sleep(0.3)  # in the child: the parent goes on committing meanwhile
        yield from chunks

    _patch_child_encoder(monkeypatch, slow)
    seen = {store.latest_index: store.snapshot()}
    store.snapshot_every = 1
    store.apply(JobRegister(job=job("during-0")))  # starts the background snapshot
    store.snapshot_every = 1 << 30
    seen[store.latest_index] = store.snapshot()
    thread = store._snapshot_thread
    assert thread is not None
    n = 1
    while thread.is_alive():
        store.apply(JobRegister(job=job(f"during-{n}", meta={"n": str(n)})))
        seen[store.latest_index] = store.snapshot()
        n += 1
    thread.join()
    child = store.last_snapshot_child
    assert child is not None and child.exit_code == 0
    snap_index, chunks = store._backend.latest_snapshot()
    assert snap_index == child.index
    assert store.latest_index > snap_index + 1  # writes were committed while the child encoded
    restored = StateSnapshot(decode_tables(chunks))
    assert restored.index == snap_index
    assert _dump(restored) == _dump(seen[snap_index])
    # the child cleared the allocs' job in its own copy only
    assert all(a.job is not None for a in store.snapshot().allocs())
    rows, first = _log_rows(tmp_path)
    assert first == snap_index + 1 and rows == store.latest_index - snap_index
    live = _dump(store.snapshot())
    store.close()
    reopened = StateStore.open(str(tmp_path))
    assert _dump(reopened.snapshot()) == live
    reopened.close()


@pytest.mark.parametrize("how", ["killed", "raises"])
def test_a_failed_child_records_no_snapshot_and_keeps_the_log(tmp_path, monkeypatch, caplog, how):
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    _populate(store, rounds=3)
    live = _dump(store.snapshot())
    rows_before = _log_rows(tmp_path)

    def dies(chunks):
        for n, data in enumerate(chunks):
            if n == 2:
                if how == "killed":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("encoding failed")
            yield data

    _patch_child_encoder(monkeypatch, dies)
    with caplog.at_level(logging.ERROR, logger="yurt.state.store"):
        index = store.write_snapshot()
    child = store.last_snapshot_child
    assert child.exit_code == (-signal.SIGKILL if how == "killed" else 1)
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(child.pid, os.WNOHANG)
    assert f"snapshot at index {index} failed" in caplog.text
    assert store._backend.latest_snapshot() is None
    assert _log_rows(tmp_path) == rows_before
    store.close()
    reopened = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    assert _dump(reopened.snapshot()) == live
    # a later attempt (the child works again) records its snapshot and truncates the log
    monkeypatch.undo()
    reopened.apply(JobRegister(job=job("after")))
    index = reopened.write_snapshot()
    assert reopened._backend.latest_snapshot()[0] == index
    assert _log_rows(tmp_path) == (0, 0)
    reopened.close()


def test_the_thread_path_when_fork_is_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("YURT_SNAPSHOT_FORK", "0")
    store = StateStore.open(str(tmp_path), snapshot_every=5)
    assert store.fork_snapshots is False
    _populate(store, rounds=3)
    live = _dump(store.snapshot())
    store.close()
    assert store.last_snapshot_child is None
    reopened = StateStore.open(str(tmp_path))
    assert reopened._snapshot_index > 0 and _dump(reopened.snapshot()) == live
    reopened.close()
    monkeypatch.delenv("YURT_SNAPSHOT_FORK")
    assert StateStore(None).fork_snapshots is True


def test_by_default_only_a_large_state_is_forked(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    assert store.fork_snapshots is True and store.fork_min_objects > 0
    _populate(store, rounds=3)
    objects = sum(len(t) for t in (store._tables.allocs, store._tables.evals, store._tables.jobs, store._tables.nodes))
    store.fork_min_objects = objects + 1  # smaller than the threshold: the thread encodes it
    store.write_snapshot()
    assert store.last_snapshot_child is None
    store.apply(JobRegister(job=job("one-more")))  # now at the threshold: forked
    store.write_snapshot()
    child = store.last_snapshot_child
    assert child is not None and child.exit_code == 0
    store.close()
    forced = StateStore.open(str(tmp_path / "forced"), fork_snapshots=True)
    assert forced.fork_min_objects == 0
    forced.close()


def test_the_childs_in_place_encoding_is_the_shared_encoding(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _populate(store, rounds=3)
    tables = store._tables
    shared = list(encode_tables(tables))
    private_copy = decode_tables(shared)  # a copy nobody else reads, like the child's
    assert list(encode_tables(private_copy, private=True)) == shared
    store.close()


def test_a_waiting_append_goes_before_the_next_snapshot_transaction():
    from yurt.state.sqlite.log import _WriteTurns

    turns = _WriteTurns()
    order: list[str] = []

    def take(kind: str) -> None:
        with getattr(turns, kind)():
            order.append(kind)

    with turns.background():  # a snapshot transaction runs
        appender = threading.Thread(target=take, args=("append",))
        appender.start()
        while not turns._appends_waiting:
            time.sleep(0.001)
        writer = threading.Thread(target=take, args=("background",))
        writer.start()
        time.sleep(0.05)  # the next snapshot transaction would take the lock now if it could
        assert order == []
    appender.join(5)
    writer.join(5)
    assert order == ["append", "background"]


def test_the_child_holds_none_of_the_parents_sockets(tmp_path, monkeypatch):
    """A connection the server closes while a snapshot is encoded must close at once."""
    store = StateStore.open(str(tmp_path), snapshot_every=0, fork_snapshots=True)
    _populate(store, rounds=1)
    ours, theirs = socket.socketpair()
    started = threading.Event()

    def slow(chunks):
        time.sleep(3)
        yield from chunks

    _patch_child_encoder(monkeypatch, slow)
    thread = threading.Thread(target=lambda: (started.set(), store.write_snapshot()))
    thread.start()
    started.wait()
    deadline = time.monotonic() + 10
    while store.last_snapshot_child is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.last_snapshot_child is not None and store.last_snapshot_child.exit_code is None  # forked, asleep
    ours.close()
    theirs.settimeout(2)
    assert theirs.recv(1) == b""  # EOF: no copy of `ours` lives in the child
    theirs.close()
    thread.join()
    assert store.last_snapshot_child.exit_code == 0
    store.close()
