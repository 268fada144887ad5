"""A node whose usage index (`node_allocs_index`) has not moved since the scheduler's
snapshot (`Plan.snapshot_index`) holds what the scheduler read: the plan's new placements
(no create index: fresh IDs) are not looked up in the state (`plan_fits_node`), but the fit is
still counted in full, so an over-commit is still rejected; a node another commit changed
after the snapshot (or a plan applied twice) is looked up as before."""

from __future__ import annotations

from yurt.scheduler import usage
from yurt.state.tables import StateReader
from yurt.structs import Plan
from yurt.testing.mock import mock_node

from .test_plan_apply_fit_recheck import _alloc, _job, _store


def _plan(store, *allocs):
    plan = Plan(eval_id="e1", job=_job, snapshot_index=store.snapshot().index)
    for alloc in allocs:
        plan.append_alloc(alloc)
    return plan


def _free_mem(store, node) -> int:
    snap = store.snapshot()
    node = snap.node_by_id(node.id)
    return usage.node_base(node, snap.allocs_by_node(node.id), snap.node_allocs_index(node.id)).free_mem


def _held_memory(store, node_id) -> int:
    return sum(a.allocated_resources.tasks["web"].memory.memory_mb
               for a in store.snapshot().allocs_by_node(node_id) if not a.terminal)


def _lookups(monkeypatch) -> list[str]:
    looked: list[str] = []
    real = StateReader.alloc_by_id

    def spy(self, alloc_id):
        looked.append(alloc_id)
        return real(self, alloc_id)

    monkeypatch.setattr(StateReader, "alloc_by_id", spy)
    return looked


def _assert_cache_equals_recount(store, node_ids):
    snap = store.snapshot()
    for node_id in node_ids:
        node = snap.node_by_id(node_id)
        base = usage.cached_base(node, snap.node_allocs_index(node_id))
        if base is not None:
            assert base.free_mem == usage.NodeBase(node, snap.allocs_by_node(node_id), ()).free_mem


def test_new_placements_on_unchanged_nodes_are_not_looked_up(monkeypatch):
    a, b = mock_node(), mock_node()
    store, applier = _store([a, b])
    plan = _plan(store, _alloc(a, 100, 1), _alloc(a, 100, 2), _alloc(b, 100, 1))
    looked = _lookups(monkeypatch)
    result = applier.apply(plan)
    assert not result.rejected_nodes
    placed = {x.id for allocs in plan.node_allocation.values() for x in allocs}
    assert not placed & set(looked)  # neither by the fit check nor by the commit
    assert {x.id for x in store.snapshot().allocs()} == placed
    assert _held_memory(store, a.id) == 200 and _held_memory(store, b.id) == 100
    _assert_cache_equals_recount(store, [a.id, b.id])


def test_an_over_commit_on_an_unchanged_node_is_still_rejected():
    roomy, small = mock_node(), mock_node()
    store, applier = _store([roomy, small])
    free = _free_mem(store, small)
    version = store.snapshot().node_allocs_index(small.id)
    # one alloc too big, and two that fit alone but not together
    for allocs in ([_alloc(small, free + 1, 1)], [_alloc(small, free // 2 + 1, 2), _alloc(small, free // 2 + 1, 3)]):
        plan = _plan(store, _alloc(roomy, 10, len(allocs)), *allocs)
        assert store.snapshot().node_allocs_index(small.id) <= plan.snapshot_index
        result = applier.apply(plan)
        assert result.rejected_nodes == [small.id]
        assert store.snapshot().node_allocs_index(small.id) == version
        assert _held_memory(store, small.id) == 0
    assert _held_memory(store, roomy.id) == 20


def test_a_node_changed_after_the_snapshot_is_looked_up_and_checked(monkeypatch):
    a = mock_node()
    store, applier = _store([a])
    free = _free_mem(store, a)
    first = _plan(store, _alloc(a, free // 2 + 1, 1))
    second = _plan(store, _alloc(a, free // 2 + 1, 2))  # made on the same snapshot as `first`
    assert not applier.apply(first).rejected_nodes
    looked = _lookups(monkeypatch)
    assert applier.apply(second).rejected_nodes == [a.id]
    assert second.node_allocation[a.id][0].id in looked
    assert _held_memory(store, a.id) == free // 2 + 1


def test_a_plan_applied_twice_is_stored_once(monkeypatch):
    a, b = mock_node(), mock_node()
    store, applier = _store([a, b])
    plan = _plan(store, _alloc(a, 300, 1), _alloc(b, 300, 1))
    assert not applier.apply(plan).rejected_nodes
    looked = _lookups(monkeypatch)
    result = applier.apply(plan)  # its nodes moved past its snapshot: the allocs are found, updated in place
    assert not result.rejected_nodes
    assert {x.id for allocs in plan.node_allocation.values() for x in allocs} <= set(looked)
    assert len(list(store.snapshot().allocs())) == 2
    assert _held_memory(store, a.id) == 300 and _held_memory(store, b.id) == 300
    _assert_cache_equals_recount(store, [a.id, b.id])
