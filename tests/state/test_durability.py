"""Restore from SQLite: log replay, snapshot + truncate, and a kill -9 mid-stream."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from state_fixtures import alloc, evaluation, job, node

from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    EvalUpsert,
    JobRegister,
    NodeRegister,
    PlanApply,
    SchedulerConfigSet,
    StateSnapshot,
    StateStore,
    TABLES,
)
from yurt.structs import SchedulerConfiguration, evolve


def _populate(store: StateStore, rounds: int = 5) -> None:
    nodes = [node() for _ in range(3)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    store.apply(SchedulerConfigSet(config=SchedulerConfiguration(scheduler_algorithm="spread")))
    for r in range(rounds):
        j = job(f"job-{r}", groups=("a", "b"), meta={"round": str(r)})
        ev = evaluation(j, queued_allocations={"a": 2, "b": 1})
        store.apply(JobRegister(job=j, eval=ev, submit_time=r))
        stored = store.snapshot().job_by_id("default", j.id)
        placed = [alloc(stored, nodes[i % 3].id, ev.id, group="a", idx=i) for i in range(2)]
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation={nodes[0].id: placed}, updated_at=r))
        store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=placed[0].id, client_status="running")]))
        store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
        store.apply(JobRegister(job=evolve(j, meta={"round": f"{r}-b"})))


def _dump(snap: StateSnapshot) -> dict:
    """Everything a reader can see, for equality checks."""
    jobs = snap.jobs()
    out = {
        "index": snap.index,
        "table_indexes": {t: snap.table_index(t) for t in TABLES},
        "jobs": jobs,
        "versions": {j.id: snap.job_versions(j.namespace, j.id) for j in jobs},
        "summaries": {j.id: snap.job_summary(j.namespace, j.id) for j in jobs},
        "evals": snap.evals(),
        "allocs": snap.allocs(),
        "nodes": snap.nodes(),
        "config": snap.scheduler_config(),
        "allocs_by_job": {j.id: [a.id for a in snap.allocs_by_job(j.namespace, j.id)] for j in jobs},
        "evals_by_job": {j.id: [e.id for e in snap.evals_by_job(j.namespace, j.id)] for j in jobs},
    }
    out["allocs_by_node"] = {n.id: [a.id for a in snap.allocs_by_node(n.id)] for n in out["nodes"]}
    out["allocs_by_eval"] = {e.id: [a.id for a in snap.allocs_by_eval(e.id)] for e in out["evals"]}
    return out


def test_reopen_replays_the_log(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _populate(store)
    before = _dump(store.snapshot())
    store.close()
    assert (tmp_path / "server" / "state.db").exists()
    reopened = StateStore.open(str(tmp_path))
    assert _dump(reopened.snapshot()) == before
    assert reopened.latest_index == before["index"]
    # it goes on from where it was
    idx = reopened.apply(JobRegister(job=job("after")))
    assert idx == before["index"] + 1
    reopened.close()


def test_reopen_after_snapshot_and_truncate(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _populate(store, rounds=3)
    snap_index = store.write_snapshot()
    _populate(store, rounds=2)  # more log after the snapshot
    before = _dump(store.snapshot())
    store.close()
    db = sqlite3.connect(tmp_path / "server" / "state.db")
    first_log = db.execute("SELECT MIN(idx) FROM log").fetchone()[0]
    db.close()
    assert first_log == snap_index + 1
    reopened = StateStore.open(str(tmp_path))
    assert _dump(reopened.snapshot()) == before
    reopened.close()


def test_automatic_snapshots_truncate_the_log(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=10, background_snapshots=False)
    _populate(store, rounds=6)
    before = _dump(store.snapshot())
    store.close()
    db = sqlite3.connect(tmp_path / "server" / "state.db")
    (log_rows,) = db.execute("SELECT COUNT(*) FROM log").fetchone()
    (snaps,) = db.execute("SELECT COUNT(*) FROM snapshot").fetchone()
    db.close()
    assert log_rows < 10 and snaps == 1
    reopened = StateStore.open(str(tmp_path))
    assert _dump(reopened.snapshot()) == before
    reopened.close()


def test_background_snapshot_then_reopen(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=7, background_snapshots=True)
    _populate(store, rounds=8)
    before = _dump(store.snapshot())
    store.close()
    reopened = StateStore.open(str(tmp_path))
    assert _dump(reopened.snapshot()) == before
    reopened.close()


def test_restored_allocs_share_their_job_object(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _populate(store, rounds=1)
    store.write_snapshot()
    store.close()
    reopened = StateStore.open(str(tmp_path))
    allocs = reopened.snapshot().allocs()
    assert len(allocs) == 2 and allocs[0].job is allocs[1].job
    reopened.close()


_WRITER = r"""
import sys
sys.path.insert(0, {tests!r})
from state_fixtures import alloc, evaluation, job, node
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
store = StateStore.open({data_dir!r}, snapshot_every=25)
n = node("node-1")
store.apply(NodeRegister(node=n))
j = job("crash")
ev = evaluation(j)
store.apply(JobRegister(job=j, eval=ev))
j = store.snapshot().job_by_id("default", "crash")
print("ready", flush=True)
i = 0
while True:
    batch = [alloc(j, n.id, ev.id, idx=i * 5 + k, id=f"alloc-{{i:06d}}-{{k}}") for k in range(5)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={{n.id: batch}}, updated_at=i))
    i += 1
"""


def _wait_for_log_index(db_path: Path, index: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = sqlite3.connect(db_path, timeout=10)
        try:
            (last,) = db.execute("SELECT MAX(idx) FROM log").fetchone()
        finally:
            db.close()
        if (last or 0) >= index:
            return
        time.sleep(0.05)
    raise AssertionError(f"the writer did not reach index {index} in {timeout}s")


def test_kill_9_while_applying_leaves_a_consistent_prefix(tmp_path):
    script = _WRITER.format(tests=str(Path(__file__).parent), data_dir=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        _wait_for_log_index(tmp_path / "server" / "state.db", 60)  # a few snapshots in
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = StateStore.open(str(tmp_path))
    snap = store.snapshot()
    allocs = snap.allocs_by_job("default", "crash")
    plans = len(allocs) // 5
    assert plans > 0 and len(allocs) == plans * 5  # whole plans only
    # a prefix: plans 0..plans-1 exactly, each at its own index
    assert {a.id for a in allocs} == {f"alloc-{i:06d}-{k}" for i in range(plans) for k in range(5)}
    assert snap.index == 2 + plans
    assert sorted({a.create_index for a in allocs}) == list(range(3, 3 + plans))
    assert len(snap.allocs_by_node("node-1")) == len(allocs)
    assert snap.job_summary("default", "crash").summary["web"].starting == len(allocs)
    assert snap.table_index("allocs") == snap.index
    store.close()


def test_a_log_entry_that_fails_on_replay_is_skipped_not_fatal(tmp_path):
    from yurt.state import NodeUpdateStatus, encode_command
    from yurt.state.sqlite import SqliteLog

    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _populate(store, rounds=1)
    good = store.latest_index
    store.close()
    backend = SqliteLog.in_data_dir(str(tmp_path))
    backend.append([(good + 1, encode_command(NodeUpdateStatus(node_id="ghost", status="down")))])
    backend.append([(good + 2, encode_command(JobRegister(job=job("late"))))])
    backend.close()
    reopened = StateStore.open(str(tmp_path))
    snap = reopened.snapshot()
    assert snap.index == good + 2 and snap.job_by_id("default", "late").create_index == good + 2
    assert snap.node_by_id("ghost") is None
    reopened.close()


def test_replayed_plans_share_the_stored_job_version(tmp_path):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    n = node()
    j = job("shared")
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    stored = store.snapshot().job_by_id("default", "shared")
    for i in range(2):
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation={n.id: [alloc(stored, n.id, ev.id, idx=i)]}))
    store.close()
    reopened = StateStore.open(str(tmp_path))
    snap = reopened.snapshot()
    a, b = snap.allocs_by_job("default", "shared")
    assert a.job is b.job and a.job is snap.job_version("default", "shared", 0)
    reopened.close()


def test_wal_checkpoints_run_on_a_background_thread(tmp_path, monkeypatch):
    """Past `_CHECKPOINT_BYTES` appended, a background thread checkpoints the WAL into the
    database file (the appending thread does not); every entry stays, also after reopen."""
    import yurt.state.sqlite.log as sqlite_log

    monkeypatch.setattr(sqlite_log, "_CHECKPOINT_BYTES", 64 << 10)
    path = str(tmp_path / "state.db")
    log = sqlite_log.SqliteLog(path)
    log._conn.execute("PRAGMA wal_autocheckpoint=0")  # only the background thread checkpoints
    blob = os.urandom(40 << 10)
    for i in range(1, 41):
        log.append([(i, blob + i.to_bytes(4, "big"))])
    checkpointer = log._checkpointer
    assert checkpointer is not None

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints >= count

    wait_for(1)
    # one more after the last append copies everything; the one counted next may have been
    # running already when it was asked for (requests meanwhile are merged into the next)
    deadline = time.monotonic() + 10
    while os.path.getsize(path) <= 1_600_000 and time.monotonic() < deadline:
        done = checkpointer.checkpoints
        checkpointer.request()
        wait_for(done + 1)
    assert os.path.getsize(path) > 1_600_000  # the pages were copied out of the WAL
    assert [i for i, _ in log.entries_after(0)] == list(range(1, 41))
    log.close()
    assert not checkpointer._thread.is_alive()
    reopened = sqlite_log.SqliteLog(path)
    entries = list(reopened.entries_after(0))
    assert [i for i, _ in entries] == list(range(1, 41))
    assert all(data == blob + i.to_bytes(4, "big") for i, data in entries)
    reopened.close()
