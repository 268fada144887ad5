"""More scenarios of Nomad's documented scheduler behaviour, one per test: job types,
feasibility, ranking and limits, blocked evals and the plan applier's partial commits."""

from yurt.scheduler.select import AFFINITY_SPREAD_LIMIT
from yurt.server.plan_apply import evaluate_plan
from yurt.structs import (
    Affinity,
    Constraint,
    EphemeralDisk,
    NetworkResource,
    Plan,
    Port,
    Resources,
    SchedulerConfiguration,
    Spread,
    SpreadTarget,
    evolve,
)
from yurt.structs.node import NodeCpuResources, NodeDiskResources, NodeMemoryResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_alloc, mock_node, mock_system_job

from .helpers import cluster, placed, run_job, small_job, stopped, with_resources


def _group(job, **fields):
    return evolve(job, task_groups=[evolve(job.task_groups[0], **fields)])


def _task(job, **fields):
    tg = job.task_groups[0]
    return _group(job, tasks=[evolve(tg.tasks[0], **fields)])


def _sized_node(h: Harness, memory: int = 8192, cpu: int = 4000, disk: int = 100 * 1024, **fields):
    node = mock_node(**fields)
    res = evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=memory),
                 cpu=NodeCpuResources(cpu_shares=cpu, total_cpu_cores=4, reservable_cpu_cores=[0, 1, 2, 3]),
                 disk=NodeDiskResources(disk_mb=disk))
    return h.add_node(evolve(node, node_resources=res))


# --- job types -------------------------------------------------------------------------------
def test_sysbatch_runs_again_on_each_node_for_a_new_job_version():
    h = cluster(2)
    job, _ = run_job(h, mock_system_job(type="sysbatch"))
    first = {a.id for a in h.job_allocs(job)}
    for alloc in h.job_allocs(job):
        h.state.upsert_alloc(evolve(alloc, client_status="complete"))
    job, _ = run_job(h, _task(job, env={"NEW": "1"}))
    again = placed(h)
    assert len(again) == 2 and not {a.id for a in again} & first
    assert {a.job_version for a in again} == {job.version}


def test_system_job_skips_nodes_outside_its_datacenters():
    h = Harness()
    for dc in ("dc1", "dc2", "dc2"):
        h.add_node(mock_node(datacenter=dc))
    run_job(h, mock_system_job(datacenters=["dc2"]))
    assert sorted(h.state.node_by_id(a.node_id).datacenter for a in placed(h)) == ["dc2", "dc2"]


def test_count_zero_stops_every_alloc_and_completes():
    h = cluster(2)
    job, _ = run_job(h, small_job(3))
    run_job(h, _group(job, count=0))
    assert len(stopped(h)) == 3 and not placed(h)
    assert h.job_allocs(job) == [] and h.updated_evals[-1].status == "complete"


def test_memory_max_is_dropped_unless_oversubscription_is_enabled():
    job = _task(small_job(1), resources=Resources(cpu=100, memory_mb=256, memory_max_mb=1024))
    h = cluster(1)
    run_job(h, job)
    assert placed(h)[0].allocated_resources.tasks["web"].memory.memory_max_mb == 0
    h = cluster(1)
    h.state.set_scheduler_config(SchedulerConfiguration(memory_oversubscription_enabled=True))
    run_job(h, job)
    memory = placed(h)[0].allocated_resources.tasks["web"].memory
    assert (memory.memory_mb, memory.memory_max_mb) == (256, 1024)


# --- feasibility ---------------------------------------------------------------------------------
def test_task_level_constraint_applies_to_the_whole_group():
    h = Harness()
    h.add_node(mock_node(meta={"ssd": "true"}))
    plain = h.add_node(mock_node(meta={"ssd": "false"}))
    job = _task(small_job(2), constraints=[Constraint(l_target="${meta.ssd}", r_target="true", operand="=")])
    run_job(h, job)
    assert len(placed(h)) == 2 and plain.id not in {a.node_id for a in placed(h)}
    assert placed(h)[0].metrics.constraint_filtered == {"${meta.ssd} = true": 1}


def test_datacenter_glob_matches_prefixes():
    h = Harness()
    for dc in ("us-east-1", "us-west-2", "eu-west-1"):
        h.add_node(mock_node(datacenter=dc))
    run_job(h, small_job(2, datacenters=["us-*"]))
    assert {h.state.node_by_id(a.node_id).datacenter for a in placed(h)} <= {"us-east-1", "us-west-2"}
    failed = h.updated_evals[-1].failed_tg_allocs
    assert failed is None


def test_disk_exhaustion_names_need_and_most_free():
    h = Harness()
    _sized_node(h, disk=4096 + 500)  # 4 GB are reserved by the mock node
    run_job(h, _group(small_job(1), ephemeral_disk=EphemeralDisk(size_mb=1000)))
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"disk": 1}
    assert "1 exhausted disk (needs 1000 MB, most free is 500 MB)" in metric.failure_reasons[0]


def test_reserved_cores_exhaustion_is_its_own_dimension():
    h = Harness()
    h.add_node(mock_node())  # 4 reservable cores
    job = _task(small_job(2), resources=Resources(cores=3, memory_mb=64))
    run_job(h, job)
    assert len(placed(h)) == 1
    assert h.updated_evals[-1].failed_tg_allocs["web"].dimension_exhausted == {"cores": 1}


def test_dynamic_port_range_exhaustion():
    h = Harness()
    node = mock_node()
    h.add_node(evolve(node, node_resources=evolve(node.node_resources, min_dynamic_port=25000,
                                                    max_dynamic_port=25000)))
    run_job(h, small_job(2))  # one dynamic port each, one port in the range
    (alloc,) = placed(h)
    assert alloc.allocated_resources.shared.networks[0].dynamic_ports[0].value == 25000
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"network: dynamic port selection failed": 1}


def test_static_port_ignoring_collision_shares_the_port():
    h = cluster(1)
    nets = [NetworkResource(mode="host", reserved_ports=[Port(label="dns", value=53, ignore_collision=True)])]
    run_job(h, _group(small_job(2), networks=nets))
    assert len(placed(h)) == 2 and len({a.node_id for a in placed(h)}) == 1


def test_ineligible_class_is_recorded_for_blocked_eval_unblocking():
    h = Harness()
    h.add_node(mock_node(node_class="gpu"))
    job = small_job(1, constraints=[Constraint(l_target="${node.class}", r_target="cpu", operand="=")])
    run_job(h, job)
    (blocked,) = h.created_evals
    assert blocked.class_eligibility == {next(iter(blocked.class_eligibility)): False}
    assert not blocked.escaped_computed_class


def test_unique_attribute_constraint_escapes_class_caching():
    h = Harness()
    node = h.add_node(mock_node())
    job = small_job(1, constraints=[Constraint(l_target="${node.unique.id}", r_target="x" + node.id, operand="=")])
    run_job(h, job)
    (blocked,) = h.created_evals
    assert blocked.escaped_computed_class


# --- ranking and limits ------------------------------------------------------------------------------
def test_negative_affinity_steers_away_from_matching_nodes():
    h = Harness()
    avoid = h.add_node(mock_node(meta={"tier": "spot"}))
    h.add_node(mock_node(meta={"tier": "ondemand"}))
    job = small_job(1, affinities=[Affinity(l_target="${meta.tier}", r_target="spot", weight=-100)])
    run_job(h, job)
    assert placed(h)[0].node_id != avoid.id
    scores = placed(h)[0].metrics.score_meta_data
    assert any(s.node_id == avoid.id and s.scores["node-affinity"] == -1.0 for s in scores)


def test_affinity_limit_is_max_of_count_and_100():
    h = Harness()
    for i in range(150):
        h.add_node(mock_node(meta={"n": str(i)}))
    job = small_job(1, affinities=[Affinity(l_target="${meta.n}", r_target="7", weight=50)])
    run_job(h, job)
    assert h.last_scheduler.nodes_scored == AFFINITY_SPREAD_LIMIT


def test_spread_value_outside_full_targets_is_avoided():
    """Targets summing to 100% leave no implicit `*` target: other values score -1."""
    h = Harness()
    for rack in ("r1", "r1", "r2", "r2", "r3", "r3"):
        h.add_node(mock_node(meta={"rack": rack}))
    spread = Spread(attribute="${meta.rack}", weight=100, spread_target=[
        SpreadTarget(value="r1", percent=50), SpreadTarget(value="r2", percent=50)])
    run_job(h, _group(small_job(4), spreads=[spread]))
    racks = sorted(h.state.node_by_id(a.node_id).meta["rack"] for a in placed(h))
    assert racks == ["r1", "r1", "r2", "r2"]


def test_spread_node_without_the_attribute_scores_minus_one():
    h = Harness()
    bare = h.add_node(mock_node(meta={}))
    h.add_node(mock_node(meta={"zone": "a"}))
    run_job(h, small_job(1, spreads=[Spread(attribute="${meta.zone}", weight=100)]))
    assert placed(h)[0].node_id != bare.id


def test_rescheduled_alloc_avoids_its_previous_node_via_penalty_score():
    h = cluster(3)
    job, _ = run_job(h, small_job(1))
    (alloc,) = h.job_allocs(job)
    h.state.upsert_alloc(evolve(alloc, client_status="failed", modify_time=h.now_ns - 60 * 10**9))
    h.process(h.new_eval(job, "alloc-failure"))
    (new,) = placed(h)
    assert new.node_id != alloc.node_id
    penalized = [s for s in new.metrics.score_meta_data if s.node_id == alloc.node_id]
    assert all(s.scores.get("node-reschedule-penalty") == -1.0 for s in penalized)


def test_binpack_fills_one_node_before_the_next():
    h = Harness()
    _sized_node(h, memory=2048)
    _sized_node(h, memory=2048)
    run_job(h, with_resources(small_job(3), cpu=200, memory_mb=400))
    per_node = sorted(sum(1 for a in placed(h) if a.node_id == n.id) for n in h.state.nodes())
    assert per_node in ([1, 2], [0, 3])  # anti-affinity may split, but never 3 nodes' worth of spread


def test_plan_annotations_count_places_per_group():
    h = cluster(2)
    job = small_job(2)
    job = evolve(job, task_groups=[job.task_groups[0], evolve(job.task_groups[0], name="api", count=3)])
    run_job(h, job)
    updates = h.plans[-1].annotations.desired_tg_updates
    assert (updates["web"].place, updates["api"].place) == (2, 3)


# --- blocked evals ------------------------------------------------------------------------------
def test_two_failing_groups_create_one_blocked_eval():
    h = cluster(1)
    job = with_resources(small_job(1), cpu=100, memory_mb=100_000)
    job = evolve(job, task_groups=[job.task_groups[0], evolve(job.task_groups[0], name="api")])
    run_job(h, job)
    (blocked,) = h.created_evals
    assert set(blocked.failed_tg_allocs) == {"web", "api"}
    assert h.updated_evals[-1].blocked_eval == blocked.id


def test_blocked_eval_queues_the_allocs_it_could_not_place():
    h = cluster(1)
    run_job(h, with_resources(small_job(3), cpu=1500, memory_mb=64))
    done = h.updated_evals[-1]
    assert done.queued_allocations == {"web": 1}
    assert done.failed_tg_allocs["web"].coalesced_failures == 0


def test_coalesced_failures_count_the_rest_of_a_failed_group():
    h = cluster(1)
    run_job(h, with_resources(small_job(5), cpu=3000, memory_mb=64))
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.coalesced_failures == 3  # 1 placed, 1 failure reported, 3 coalesced


# --- plan applier ---------------------------------------------------------------------------------
def test_all_at_once_plan_is_rejected_entirely_when_one_node_does_not_fit():
    h = cluster(2)
    job, _ = run_job(h, small_job(2, all_at_once=True, constraints=[
        Constraint(operand="distinct_hosts", r_target="true")]))
    plan = h.plans[-1]
    assert plan.all_at_once
    h2 = Harness(h.state.snapshot())
    for allocs in plan.node_allocation.values():
        for a in allocs:
            h2.state._allocs.pop(a.id)
            h2.state._by_node[a.node_id].pop(a.id)
            h2.state._by_job[(a.namespace, a.job_id)].pop(a.id)
    full = next(iter(plan.node_allocation))
    hog = with_resources(small_job(1, id="hog"), cpu=3900, memory_mb=64)
    h2.add_alloc(mock_alloc(h2.state.upsert_job(hog), h2.state.node_by_id(full)))
    result, _ = evaluate_plan(h2.state, plan)
    assert not result.node_allocation and result.rejected_nodes and result.refresh_index


def test_applier_drops_stops_of_a_node_it_rejects():
    h = cluster(1)
    node = h.state.nodes()[0]
    job = h.state.upsert_job(with_resources(small_job(2), cpu=1000, memory_mb=64))
    old = h.add_alloc(mock_alloc(job, node))
    plan = Plan(eval_id="e", job=job)
    plan.append_stopped_alloc(old, "replaced")
    big = evolve(mock_alloc(job, node, index=1), allocated_resources=mock_alloc(
        with_resources(job, cpu=3950, memory_mb=64), node).allocated_resources)
    plan.append_alloc(big)
    result, _ = evaluate_plan(h.state, plan)
    assert result.rejected_nodes == [node.id]
    assert not result.node_update and not result.node_allocation


def test_applier_rejects_placements_on_a_node_that_went_down():
    h = cluster(1)
    run_job(h, small_job(1))
    plan = h.plans[-1]
    (node_id,) = plan.node_allocation
    h.add_node(evolve(h.state.node_by_id(node_id), status="down"))
    result, verdicts = evaluate_plan(h.state, plan)
    assert result.rejected_nodes == [node_id]
    assert verdicts[0].reason == "node is not ready for placements"


def test_partial_commit_counts_only_committed_allocs_as_placed():
    h = cluster(2)
    h.reject_nodes = lambda harness, plan: {sorted(plan.node_allocation)[0]} if len(harness.plans) == 1 else set()
    job, _ = run_job(h, small_job(4))
    assert h.results[0].rejected_nodes and h.updated_evals[-1].queued_allocations == {"web": 0}
    assert len(h.job_allocs(job)) == 4
