"""The plan applier re-checks every node of a plan against the newest state, on the real
store with the usage cache warm (carried over commit by commit): a node whose cached usage
is exactly the version the plan was made on is checked too, and a node another commit
filled meanwhile is rejected while the rest of the plan commits."""

from __future__ import annotations

from yurt.scheduler import usage
from yurt.server.plan_apply import PlanApplier
from yurt.state import JobRegister, NodeRegister, StateStore
from yurt.structs import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedTaskResources,
    Plan,
    evolve,
)
from yurt.testing.mock import mock_alloc, mock_job, mock_node

_job = mock_job(id="web")


def _store(nodes):
    store = StateStore.open(None)
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    store.apply(JobRegister(job=_job))
    return store, PlanApplier(store, now_ns=lambda: 1_000_000_000)


def _alloc(node, memory_mb: int, n: int):
    res = AllocatedResources(tasks={"web": AllocatedTaskResources(
        cpu=AllocatedCpuResources(cpu_shares=100), memory=AllocatedMemoryResources(memory_mb=memory_mb))})
    job = _job
    return evolve(mock_alloc(job, node, allocated_resources=res), id=f"{node.id[:8]}-{memory_mb}-{n}", job=None)


def _plan(*allocs, all_at_once=False):
    plan = Plan(eval_id="e1", job=_job, all_at_once=all_at_once)
    for alloc in allocs:
        plan.append_alloc(alloc)
    return plan


def _warm(store, node) -> usage.NodeBase:
    snap = store.snapshot()
    node = snap.node_by_id(node.id)
    return usage.node_base(node, snap.allocs_by_node(node.id), snap.node_allocs_index(node.id))


def _held_memory(store, node_id) -> int:
    return sum(a.allocated_resources.tasks["web"].memory.memory_mb
               for a in store.snapshot().allocs_by_node(node_id) if not a.terminal)


def test_a_plan_that_never_fit_is_rejected_on_an_unchanged_node():
    roomy, small = mock_node(), mock_node()
    store, applier = _store([roomy, small])
    capacity = _warm(store, small).free_mem
    version = store.snapshot().node_allocs_index(small.id)
    result = applier.apply(_plan(_alloc(roomy, 1000, 1), _alloc(small, capacity + 1, 1)))
    assert result.rejected_nodes == [small.id]
    assert store.snapshot().node_allocs_index(small.id) == version  # nothing of it landed there
    assert _held_memory(store, small.id) == 0 and _held_memory(store, roomy.id) == 1000
    assert result.refresh_index == result.alloc_index


def test_two_plans_made_on_one_snapshot_the_second_is_rejected_where_the_first_filled():
    a, b = mock_node(), mock_node()
    store, applier = _store([a, b])
    free = _warm(store, a).free_mem
    _warm(store, b)
    half = free // 2 + 1  # two of them do not fit on a node
    first = _plan(_alloc(a, half, 1))
    second = _plan(_alloc(a, half, 2), _alloc(b, half, 2))  # made on the same state as `first`
    assert not applier.apply(first).rejected_nodes
    result = applier.apply(second)
    assert result.rejected_nodes == [a.id]
    assert list(result.node_allocation) == [b.id]
    assert _held_memory(store, a.id) == half and _held_memory(store, b.id) == half
    # the carried usage says what a recount says: the next check sees the first plan's alloc
    snap = store.snapshot()
    for node_id in (a.id, b.id):
        node = snap.node_by_id(node_id)
        base = usage.cached_base(node, snap.node_allocs_index(node_id))
        assert base is not None
        assert base.free_mem == usage.NodeBase(node, snap.allocs_by_node(node_id), ()).free_mem
    third = applier.apply(_plan(_alloc(a, free - half, 3)))  # exactly what is left still fits
    assert not third.rejected_nodes
    assert applier.apply(_plan(_alloc(a, 1, 4))).rejected_nodes == [a.id]


def test_all_at_once_commits_nothing_when_an_earlier_commit_filled_a_node():
    a, b = mock_node(), mock_node()
    store, applier = _store([a, b])
    free = _warm(store, a).free_mem
    assert not applier.apply(_plan(_alloc(a, free, 1))).rejected_nodes
    result = applier.apply(_plan(_alloc(a, 1, 2), _alloc(b, 1, 2), all_at_once=True))
    assert result.rejected_nodes == [a.id] and result.node_allocation == {}
    assert _held_memory(store, b.id) == 0
