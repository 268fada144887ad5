"""System and sysbatch jobs: one alloc per feasible node."""

from yurt.structs import MINUTE, Constraint, DesiredTransition, DrainStrategy, evolve
from yurt.structs.node import NodeMemoryResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_node, mock_system_job

from .helpers import cluster, placed, run_job, stopped, with_resources


def _sysbatch():
    job = mock_system_job(type="sysbatch")
    return job


def test_one_alloc_per_node_named_index_zero():
    h = cluster(4)
    job, ev = run_job(h, mock_system_job())
    allocs = placed(h)
    assert len(allocs) == 4 and len({a.node_id for a in allocs}) == 4
    assert {a.name for a in allocs} == {f"{job.id}.web[0]"}
    assert h.updated_evals[-1].status == "complete" and h.updated_evals[-1].queued_allocations == {"web": 0}


def test_infeasible_nodes_are_skipped_without_failure():
    h = cluster(2)
    node = mock_node()
    h.add_node(evolve(node, attributes={**node.attributes, "kernel.name": "windows"}))
    run_job(h, mock_system_job())
    assert len(placed(h)) == 2
    done = h.updated_evals[-1]
    assert done.failed_tg_allocs is None and done.queued_allocations == {"web": 0}
    assert not h.created_evals  # system jobs do not block


def test_exhausted_node_is_a_failed_placement():
    h = cluster(1)
    node = mock_node()
    h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=300))))
    run_job(h, mock_system_job())
    assert len(placed(h)) == 1
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"memory": 1}
    assert h.updated_evals[-1].queued_allocations == {"web": 1}


def test_new_node_gets_an_alloc_on_next_eval():
    h = cluster(2)
    job, _ = run_job(h, mock_system_job())
    new = h.add_node(mock_node())
    h.process(h.new_eval(job, "node-update", node_id=new.id))
    assert [a.node_id for a in placed(h)] == [new.id]


def test_down_node_alloc_is_lost_and_not_replaced_elsewhere():
    h = cluster(2)
    job, _ = run_job(h, mock_system_job())
    victim = h.job_allocs(job)[0]
    h.add_node(evolve(h.state.node_by_id(victim.node_id), status="down"))
    h.process(h.new_eval(job, "node-update"))
    assert [(a.id, a.client_status) for a in stopped(h)] == [(victim.id, "lost")]
    assert not placed(h)


def test_draining_node_alloc_is_stopped_and_ineligible_node_alloc_kept():
    h = cluster(2)
    job, _ = run_job(h, mock_system_job())
    a, b = h.job_allocs(job)
    h.add_node(evolve(h.state.node_by_id(a.node_id), drain_strategy=DrainStrategy(deadline=MINUTE)))
    h.add_node(evolve(h.state.node_by_id(b.node_id), scheduling_eligibility="ineligible"))
    h.process(h.new_eval(job, "node-update"))
    assert not stopped(h)  # system allocs go last: only once the drainer marks them
    h.add_alloc(evolve(h.state.alloc_by_id(a.id), desired_transition=DesiredTransition(migrate=True)))
    h.process(h.new_eval(job, "node-drain"))
    assert [s.id for s in stopped(h)] == [a.id]
    assert not placed(h)


def test_job_update_and_stop():
    h = cluster(2)
    job, _ = run_job(h, mock_system_job())
    job2, _ = run_job(h, with_resources(job, cpu=600))
    assert len(stopped(h)) == 2 and len(placed(h)) == 2
    assert all(a.job_version == job2.version for a in placed(h))
    run_job(h, evolve(job2, stop=True))
    assert len(stopped(h)) == 2 and h.job_allocs(job) == []


def test_constraint_limits_system_job_to_matching_nodes():
    h = Harness()
    h.add_node(mock_node(node_class="a"))
    target = h.add_node(mock_node(node_class="b"))
    job = mock_system_job(constraints=[Constraint(l_target="${node.class}", r_target="b")])
    run_job(h, job)
    assert [a.node_id for a in placed(h)] == [target.id]


def test_sysbatch_completed_alloc_is_not_rerun():
    h = cluster(2)
    job, _ = run_job(h, _sysbatch())
    for alloc in h.job_allocs(job):
        h.state.upsert_alloc(evolve(alloc, client_status="complete"))
    plans = len(h.plans)
    h.process(h.new_eval(job, "node-update"))
    assert len(h.plans) == plans


def test_system_failed_alloc_is_replaced_on_the_same_node():
    h = cluster(1)
    job, _ = run_job(h, mock_system_job())
    (alloc,) = h.job_allocs(job)
    h.state.upsert_alloc(evolve(alloc, client_status="failed"))
    h.process(h.new_eval(job, "alloc-failure"))
    (new,) = placed(h)
    assert new.node_id == alloc.node_id and new.id != alloc.id
