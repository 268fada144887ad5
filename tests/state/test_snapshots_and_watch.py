"""Snapshot isolation, listeners and blocking-query watchers."""

import asyncio
import threading

from state_fixtures import alloc, evaluation, job, node

from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    JobRegister,
    NodeRegister,
    PlanApply,
    StateStore,
    encode_command,
    decode_command,
)
from yurt.state import commands as c
from yurt.structs import SchedulerConfiguration, evolve


def _world():
    store = StateStore.open(None)
    j, n = job(), node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    return store, store.snapshot().job_by_id("default", "web"), n, ev


def test_snapshot_does_not_see_later_writes():
    store, j, n, ev = _world()
    a = alloc(j, n.id, ev.id)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}))
    snap = store.snapshot()
    index = snap.index
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")]))
    more = [alloc(j, n.id, ev.id, idx=i) for i in range(1, 200)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: more}))
    store.apply(JobRegister(job=evolve(j, meta={"new": "1"})))
    assert snap.index == index
    assert snap.alloc_by_id(a.id).client_status == "pending"
    assert len(snap.allocs_by_node(n.id)) == 1 and len(snap.allocs_by_job("default", "web")) == 1
    assert snap.job_by_id("default", "web").version == 0
    assert snap.job_summary("default", "web").summary["web"].running == 0
    now = store.snapshot()
    assert len(now.allocs_by_node(n.id)) == 200 and now.job_by_id("default", "web").version == 1
    assert now.alloc_by_id(a.id).client_status == "running"


def test_snapshot_taken_in_another_thread_is_consistent():
    store, j, n, ev = _world()
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            snap = store.snapshot()
            seen.append((len(snap.allocs_by_node(n.id)), len(snap.allocs())))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for p in range(50):
            batch = [alloc(j, n.id, ev.id, idx=p * 10 + i) for i in range(10)]
            store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: batch}))
    finally:
        stop.set()
        t.join()
    assert seen and all(by_node == total and total % 10 == 0 for by_node, total in seen)


def test_listeners_get_index_and_command():
    store, j, n, ev = _world()
    calls = []
    store.add_listener(lambda index, cmd: calls.append((index, type(cmd).__name__)))
    idx = store.apply(JobRegister(job=evolve(j, meta={"x": "1"})))
    assert calls == [(idx, "JobRegister")]


def test_every_command_round_trips_through_the_log_encoding():
    store, j, n, ev = _world()
    a = alloc(j, n.id, ev.id)
    samples = [
        c.JobRegister(job=j, eval=ev, submit_time=5),
        c.JobDeregister(namespace="default", job_id="web", purge=True, eval=ev),
        c.JobStabilitySet(namespace="default", job_id="web", version=2),
        c.EvalUpsert(evals=[ev]),
        c.EvalDelete(eval_ids=[ev.id], alloc_ids=[a.id]),
        c.NodeRegister(node=n),
        c.NodeUpdateStatus(node_id=n.id, status="down", updated_at=3, evals=[ev]),
        c.NodeUpdateEligibility(node_id=n.id, eligibility="ineligible"),
        c.NodeUpdateDrain(node_id=n.id, mark_eligible=True),
        c.NodeDeregister(node_ids=[n.id]),
        c.PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}, node_update={n.id: [a]}, evals=[ev]),
        c.AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")], updated_at=1),
        c.AllocDesiredTransition(transitions={a.id: a.desired_transition}),
        c.SchedulerConfigSet(config=SchedulerConfiguration(scheduler_algorithm="spread")),
    ]
    for cmd in samples:
        assert decode_command(encode_command(cmd)) == cmd


async def test_wait_for_change_wakes_on_a_watched_table():
    store, j, n, ev = _world()
    start = store.snapshot().table_index("allocs")
    waiter = asyncio.create_task(store.wait_for_change(["allocs"], start, timeout=60))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    idx = store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [alloc(j, n.id, ev.id)]}))
    assert await asyncio.wait_for(waiter, 10) == idx


async def test_wait_for_change_ignores_other_tables():
    store, j, n, ev = _world()
    start = store.snapshot().table_index("nodes")
    waiter = asyncio.create_task(store.wait_for_change(["nodes"], start, timeout=60))
    await asyncio.sleep(0.01)
    store.apply(JobRegister(job=evolve(j, meta={"x": "1"})))
    await asyncio.sleep(0.02)
    assert not waiter.done() and store._watchers.waiting() == 1
    new = store.apply(NodeRegister(node=node()))
    assert await asyncio.wait_for(waiter, 5) == new


async def test_wait_for_change_times_out_with_the_current_index():
    store, j, n, ev = _world()
    start = store.snapshot().table_index("nodes")
    assert await store.wait_for_change(["nodes"], start, timeout=0.05) == start
    assert store._watchers.waiting() == 0


async def test_wait_for_change_returns_at_once_when_already_newer():
    store, j, n, ev = _world()
    assert await store.wait_for_change(["jobs", "nodes"], 0, timeout=10) == store.latest_index


async def test_many_waiters_wake_only_for_their_table():
    store, j, n, ev = _world()
    idx = store.latest_index
    alloc_waiters = [asyncio.create_task(store.wait_for_change(["allocs"], idx, 60)) for _ in range(3000)]
    node_waiters = [asyncio.create_task(store.wait_for_change(["nodes"], idx, 60)) for _ in range(3000)]
    await asyncio.sleep(0.05)
    assert store._watchers.waiting() == 6000
    new = store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [alloc(j, n.id, ev.id)]}))
    results = await asyncio.wait_for(asyncio.gather(*alloc_waiters), 30)
    assert set(results) == {new}
    assert not any(w.done() for w in node_waiters)
    assert store._watchers.waiting() == 3000
    for w in node_waiters:
        w.cancel()
    await asyncio.gather(*node_waiters, return_exceptions=True)
    assert store._watchers.waiting() == 0


async def test_apply_from_another_thread_wakes_loop_waiters():
    store, j, n, ev = _world()
    idx = store.latest_index
    waiter = asyncio.create_task(store.wait_for_change(["allocs"], idx, 60))
    await asyncio.sleep(0.01)
    placed = alloc(j, n.id, ev.id)
    new = await asyncio.to_thread(
        store.apply, PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [placed]})
    )
    assert await asyncio.wait_for(waiter, 10) == new


async def test_wait_for_change_with_no_tables_means_any_table():
    store, j, n, ev = _world()
    idx = store.latest_index
    waiter = asyncio.create_task(store.wait_for_change([], idx, 60))
    await asyncio.sleep(0.01)
    new = store.apply(JobRegister(job=evolve(j, meta={"any": "1"})))
    assert await asyncio.wait_for(waiter, 10) == new
