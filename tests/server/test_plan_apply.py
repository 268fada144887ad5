"""Plan applier verification: partial commit, all-at-once, stops always fit."""

from yurt.server.plan_apply import evaluate_plan
from yurt.structs import (
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedTaskResources,
    AllocatedCpuResources,
    Plan,
    evolve,
)
from yurt.testing.mock import mock_alloc, mock_job, mock_node


class FakeSnapshot:
    def __init__(self, nodes, allocs, index=10):
        self.index = index
        self._nodes = {n.id: n for n in nodes}
        self._allocs = allocs

    def node_by_id(self, node_id):
        return self._nodes.get(node_id)

    def allocs_by_node(self, node_id):
        return [a for a in self._allocs if a.node_id == node_id]


def sized_alloc(node, memory_mb, cpu=100):
    res = AllocatedResources(tasks={"web": AllocatedTaskResources(
        cpu=AllocatedCpuResources(cpu_shares=cpu), memory=AllocatedMemoryResources(memory_mb=memory_mb))})
    return mock_alloc(mock_job(), node, allocated_resources=res)


def test_partial_commit_rejects_only_the_full_node():
    roomy, full = mock_node(), mock_node()
    existing = sized_alloc(full, 7000)
    snap = FakeSnapshot([roomy, full], [existing])
    plan = Plan(eval_id="e1")
    plan.append_alloc(sized_alloc(roomy, 2000))
    plan.append_alloc(sized_alloc(full, 2000))
    result, verdicts = evaluate_plan(snap, plan)
    assert list(result.node_allocation) == [roomy.id]
    assert result.rejected_nodes == [full.id]
    assert result.refresh_index == snap.index
    assert {v.node_id: v.reason for v in verdicts if not v.fits} == {full.id: "memory"}


def test_all_at_once_commits_nothing_when_a_node_is_rejected():
    roomy, full = mock_node(), mock_node()
    snap = FakeSnapshot([roomy, full], [sized_alloc(full, 7000)])
    plan = Plan(eval_id="e1", all_at_once=True)
    plan.append_alloc(sized_alloc(roomy, 2000))
    plan.append_alloc(sized_alloc(full, 2000))
    result, _ = evaluate_plan(snap, plan)
    assert result.node_allocation == {} and result.rejected_nodes == [full.id]


def test_stopping_an_alloc_frees_room_in_the_same_plan():
    node = mock_node()
    old = sized_alloc(node, 7000)
    snap = FakeSnapshot([node], [old])
    plan = Plan(eval_id="e1")
    plan.append_stopped_alloc(old, "replaced")
    plan.append_alloc(sized_alloc(node, 7000))
    result, _ = evaluate_plan(snap, plan)
    assert not result.rejected_nodes
    assert len(result.node_allocation[node.id]) == 1 and len(result.node_update[node.id]) == 1


def test_placement_on_missing_or_down_node_is_rejected_stops_are_not():
    down = mock_node(status="down")
    alloc = sized_alloc(down, 100)
    snap = FakeSnapshot([down], [alloc])
    plan = Plan(eval_id="e1")
    plan.append_alloc(sized_alloc(down, 100))
    plan.append_alloc(evolve(sized_alloc(down, 100), node_id="gone"))
    result, verdicts = evaluate_plan(snap, plan)
    assert sorted(result.rejected_nodes) == sorted([down.id, "gone"])
    assert {v.reason for v in verdicts if not v.fits} == {"node is not ready for placements", "node does not exist"}
    stops = Plan(eval_id="e2")
    stops.append_stopped_alloc(alloc, "alloc is lost since its node is down", "lost")
    result, _ = evaluate_plan(snap, stops)
    assert not result.rejected_nodes and result.node_update[down.id][0].id == alloc.id
