"""The per-node alloc index (`allocs:node:<id>`): a write to one node's allocs moves that
node's index and wakes only its waiters, so thousands of client watches are not all woken
by every placement."""

import asyncio

from yurt.state import StateStore
from yurt.state.commands import AllocClientUpdate, AllocUpdate, JobRegister, PlanApply
from yurt.state.txn import node_allocs_key
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _store_with_allocs():
    store = StateStore.open(None)
    node_a, node_b = mock_node(), mock_node()
    job = mock_job()
    store.apply(JobRegister(job=job, submit_time=1))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    a, b = mock_alloc(job, node_a), mock_alloc(job, node_b, index=1)
    index = store.apply(PlanApply(eval_id="e", job=job, node_allocation={node_a.id: [a], node_b.id: [b]}))
    return store, a, b, index


def test_each_node_has_its_own_alloc_index():
    store, a, b, placed = _store_with_allocs()
    snap = store.snapshot()
    assert snap.table_index(node_allocs_key(a.node_id)) == placed == snap.table_index(node_allocs_key(b.node_id))
    later = store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")], updated_at=2))
    snap = store.snapshot()
    assert snap.table_index(node_allocs_key(a.node_id)) == later
    assert snap.table_index(node_allocs_key(b.node_id)) == placed
    assert snap.table_index("allocs") == later
    store.close()


async def test_a_write_wakes_only_the_nodes_waiters():
    store, a, b, placed = _store_with_allocs()
    waiter_b = asyncio.create_task(store.wait_for_change([node_allocs_key(b.node_id)], placed, 5))
    waiter_a = asyncio.create_task(store.wait_for_change([node_allocs_key(a.node_id)], placed, 5))
    await asyncio.sleep(0.05)
    later = store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")], updated_at=2))
    assert await asyncio.wait_for(waiter_a, 5) == later
    await asyncio.sleep(0.1)
    assert not waiter_b.done()
    waiter_b.cancel()
    store.close()


def test_snapshot_allocs_by_node_follows_every_write_and_returns_fresh_lists():
    store, a, b, _ = _store_with_allocs()
    before = store.snapshot()
    first = before.allocs_by_node(a.node_id)
    first.clear()  # callers may change the list they get
    assert [x.id for x in before.allocs_by_node(a.node_id)] == [a.id]
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")], updated_at=2))
    after = store.snapshot()
    assert [x.client_status for x in after.allocs_by_node(a.node_id)] == ["running"]
    assert [x.client_status for x in before.allocs_by_node(a.node_id)] != ["running"]  # old view kept
    assert [x.client_status for x in after.allocs_by_node(a.node_id)] == ["running"]
    assert [x.id for x in after.allocs_by_node(b.node_id)] == [b.id]
    assert after.allocs_by_node("no-such-node") == []
    store.close()
