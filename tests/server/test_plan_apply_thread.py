"""PlanApplier.submit_from_thread: a scheduler thread's plan is applied in one loop turn
when nothing is queued, queued behind other plans otherwise, and refused like `submit`."""

import asyncio
import threading
import time

import pytest

from yurt.server.plan_apply import PlanApplier, call_from_thread
from yurt.state.commands import JobRegister, NodeRegister
from yurt.state.store import StateStore
from yurt.structs import Plan
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _store_with(node, job):
    store = StateStore.open(None)
    store.apply(NodeRegister(node=node))
    store.apply(JobRegister(job=job))
    return store


def _placement_plan(store, node, job, priority=50):
    plan = Plan(eval_id="e1", priority=priority)
    plan.append_alloc(mock_alloc(store.snapshot().job_by_id(job.namespace, job.id), node))
    return plan


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


async def _join(t):
    while t.is_alive():
        await asyncio.sleep(0.01)


def test_a_thread_plan_is_committed_and_its_result_returned():
    async def main():
        node, job = mock_node(), mock_job()
        store = _store_with(node, job)
        applier = PlanApplier(store, time.time_ns)
        applier.start()
        plan = _placement_plan(store, node, job)
        loop = asyncio.get_running_loop()
        t, out = _in_thread(lambda: applier.submit_from_thread(plan, loop).result(5))
        await _join(t)
        await applier.stop()
        result = out["result"]
        assert list(result.node_allocation) == [node.id]
        assert result.alloc_index == store.latest_index
        assert [a.node_id for a in store.snapshot().allocs_by_node(node.id)] == [node.id]

    asyncio.run(main())


def test_plans_already_queued_go_first():
    async def main():
        node, other, job = mock_node(), mock_node(), mock_job()
        store = _store_with(node, job)
        store.apply(NodeRegister(node=other))
        applier = PlanApplier(store, time.time_ns)
        applier.start()
        loop = asyncio.get_running_loop()
        # queued by the time the thread's callback runs (its task's first step comes first)
        queued = asyncio.ensure_future(applier.submit(_placement_plan(store, node, job)))
        future = applier.submit_from_thread(_placement_plan(store, other, job), loop)
        first = await queued
        while not future.done():
            await asyncio.sleep(0.01)
        await applier.stop()
        second = future.result()
        assert list(first.node_allocation) == [node.id] and list(second.node_allocation) == [other.id]
        assert first.alloc_index < second.alloc_index

    asyncio.run(main())

def test_a_plan_of_a_lost_eval_is_refused():
    async def main():
        node, job = mock_node(), mock_job()
        store = _store_with(node, job)
        applier = PlanApplier(store, time.time_ns, outstanding=lambda eval_id: "other-token")
        applier.start()
        plan = _placement_plan(store, node, job)
        plan.eval_token = "mine"
        future = applier.submit_from_thread(plan, asyncio.get_running_loop())
        while not future.done():
            await asyncio.sleep(0.01)
        await applier.stop()
        with pytest.raises(RuntimeError, match="no longer outstanding"):
            future.result()
        assert store.snapshot().allocs_by_node(node.id) == []

    asyncio.run(main())


def test_call_from_thread_hands_back_results_and_errors():
    async def main():
        loop = asyncio.get_running_loop()
        ok = call_from_thread(loop, lambda: 42)
        bad = call_from_thread(loop, lambda: 1 / 0)
        while not (ok.done() and bad.done()):
            await asyncio.sleep(0.01)
        assert ok.result() == 42
        with pytest.raises(ZeroDivisionError):
            bad.result()

    asyncio.run(main())
