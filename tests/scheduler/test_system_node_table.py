"""The system scheduler on the state store takes its ready nodes from the shared node table
(computed once per node-table version for all of a storm's system evals): the plan is the
one `ready_nodes` gives, and the table's list is not shuffled by the eval."""

import pytest

from bench.sched_one_eval import RecordingPlanner
from yurt.scheduler import new_scheduler, system
from yurt.scheduler.nodetable import node_table
from yurt.state import JobRegister, NodeRegister, StateStore
from yurt.structs import Evaluation, evolve
from yurt.testing.mock import mock_node, mock_system_job


def _store():
    store = StateStore.open(None)
    nodes = [evolve(mock_node(), status="ready") for _ in range(8)]
    nodes += [evolve(mock_node(), status="down"), evolve(mock_node(), status="ready", datacenter="dc2"),
              evolve(mock_node(), status="ready", scheduling_eligibility="ineligible")]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    job = evolve(mock_system_job(id="sys"), datacenters=["dc1"])
    store.apply(JobRegister(job=job))
    return store, nodes, store.snapshot().job_by_id(job.namespace, job.id)


def _run(store, job):
    planner = RecordingPlanner()
    ev = Evaluation(id="8a3a5f0e-8d6c-4c9e-9c54-2f7d5e0b9a11", namespace=job.namespace, priority=job.priority,
                    type=job.type, triggered_by="node-update", job_id=job.id, status="pending")
    new_scheduler(job.type, store.snapshot(), planner, now_ns=1_700_000_000 * 10**9).process(ev)
    return planner


def _placements(planner):
    return sorted((node_id, a.name) for node_id, allocs in planner.plan.node_allocation.items() for a in allocs)


def test_system_plan_from_the_node_table_equals_the_ready_nodes_one(monkeypatch):
    store, nodes, job = _store()
    table = node_table(store.snapshot())
    assert table is not None
    before = [n.id for n in table.ready(job)[0].nodes]
    with_table = _run(store, job)
    assert [n.id for n in table.ready(job)[0].nodes] == before == sorted(before)  # not shuffled in place
    assert {node_id for node_id, _ in _placements(with_table)} == {n.id for n in nodes[:8]}

    calls = []
    monkeypatch.setattr(system, "node_table", lambda snap: calls.append(snap) or None)
    without = _run(store, job)
    assert calls  # the ready_nodes path ran
    assert _placements(without) == _placements(with_table)
    assert [e.status for e in without.evals] == [e.status for e in with_table.evals] == ["complete"]
    assert without.evals[-1].queued_allocations == with_table.evals[-1].queued_allocations


@pytest.mark.parametrize("dcs", [["dc2"], ["dc*"]])
def test_jobs_with_other_datacenters_get_their_own_ready_nodes(dcs):
    store, nodes, job = _store()
    store.apply(JobRegister(job=evolve(job, id="other", datacenters=dcs)))
    other = store.snapshot().job_by_id(job.namespace, "other")
    placed = {node_id for node_id, _ in _placements(_run(store, other))}
    expect = {nodes[9].id} if dcs == ["dc2"] else {n.id for n in nodes[:8]} | {nodes[9].id}
    assert placed == expect
