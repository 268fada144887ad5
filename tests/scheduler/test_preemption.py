"""Preemption (Nomad's internals/scheduling/preemption): which allocs are evicted, when,
how the plan carries it, and what the plan applier commits."""

import pytest

from yurt.scheduler.preempt import (
    Candidate,
    Need,
    net_priority,
    preemption_enabled,
    preemption_score,
    resource_distance,
    select_preemptions,
)
from yurt.server.plan_apply import evaluate_plan
from yurt.structs import (
    MigrateStrategy,
    NetworkResource,
    PlanResult,
    Port,
    PreemptionConfig,
    SchedulerConfiguration,
    evolve,
)
from yurt.structs.node import NodeCpuResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_alloc, mock_batch_job, mock_node, mock_system_job

from .helpers import placed, run_job, small_job, with_resources

SERVICE_PREEMPTION = SchedulerConfiguration(preemption_config=PreemptionConfig(service_scheduler_enabled=True))


def _node(h: Harness, cpu: int = 4000, **fields):
    node = mock_node(**fields)
    res = evolve(node.node_resources, cpu=NodeCpuResources(cpu_shares=cpu, total_cpu_cores=4,
                                                           reservable_cpu_cores=[0, 1, 2, 3]))
    return h.add_node(evolve(node, node_resources=res))


def _hog(h: Harness, node, priority: int, cpu: int, job_id: str | None = None, count: int = 1, tg_fields=None,
         job_type: str = "service"):
    """A stored job of `priority` with `count` allocs of `cpu` MHz running on `node`."""
    job = with_resources(small_job(count, priority=priority, type=job_type, **({"id": job_id} if job_id else {})),
                         cpu=cpu, memory_mb=64)
    if tg_fields:
        job = evolve(job, task_groups=[evolve(job.task_groups[0], **tg_fields)])
    job = h.state.upsert_job(job)
    allocs = [h.add_alloc(evolve(mock_alloc(job, node, index=i), client_status="running")) for i in range(count)]
    return job, allocs


def _system(priority: int = 100, cpu: int = 2000, **fields):
    return with_resources(mock_system_job(priority=priority, **fields), cpu=cpu, memory_mb=64)


def _evicted(h: Harness, plan_index: int = -1):
    return [a for allocs in h.plans[plan_index].node_preemptions.values() for a in allocs]


def _rerun_with(h: Harness, job, **preemption):
    """Evaluate `job` again under a PreemptionConfig of `preemption`; the evictions planned."""
    h.state.set_scheduler_config(SchedulerConfiguration(preemption_config=PreemptionConfig(**preemption)))
    h.process(h.new_eval(job))
    return _evicted(h)


# --- configuration ------------------------------------------------------------------------
def test_defaults_enable_preemption_for_system_only():
    cfg = SchedulerConfiguration()
    assert [preemption_enabled(cfg, t) for t in ("system", "sysbatch", "service", "batch")] == [
        True, False, False, False]
    assert preemption_enabled(None, "system") and not preemption_enabled(None, "service")


def test_preemption_config_wire_names():
    from yurt.structs import to_wire

    wire = to_wire(SchedulerConfiguration())["PreemptionConfig"]
    assert wire == {"SystemSchedulerEnabled": True, "SysBatchSchedulerEnabled": False,
                    "BatchSchedulerEnabled": False, "ServiceSchedulerEnabled": False}


# --- the system scheduler (on by default) -------------------------------------------------
def test_system_job_evicts_lower_priority_alloc_on_full_node():
    h = Harness()
    node = _node(h)
    low, (victim,) = _hog(h, node, priority=50, cpu=3000)
    job, _ = run_job(h, _system(priority=100))
    (alloc,) = placed(h)
    (evicted,) = _evicted(h)
    assert evicted.id == victim.id and alloc.preempted_allocations == [victim.id]
    stored = h.state.alloc_by_id(victim.id)
    assert stored.desired_status == "evict"
    assert stored.desired_description == f"Preempted by alloc ID {alloc.id}"
    assert stored.preempted_by_allocation == alloc.id
    assert h.updated_evals[-1].status == "complete" and h.updated_evals[-1].failed_tg_allocs is None


def test_preempted_job_gets_a_preemption_eval_and_blocks_without_room():
    h = Harness()
    node = _node(h)
    low, _ = _hog(h, node, priority=50, cpu=3000)
    run_job(h, _system(priority=100))
    (follow,) = h.preemption_evals
    assert (follow.job_id, follow.triggered_by, follow.status, follow.priority) == (low.id, "preemption", "pending", 50)
    h.process(follow)  # the low job wants its alloc back; no node has room
    assert h.updated_evals[-1].failed_tg_allocs["web"].dimension_exhausted == {"cpu": 1}
    (blocked,) = [e for e in h.created_evals if e.job_id == low.id]
    assert blocked.status == "blocked"


@pytest.mark.parametrize("low_priority, preempts", [(91, False), (90, True)])
def test_only_jobs_at_least_ten_priority_lower_are_candidates(low_priority, preempts):
    h = Harness()
    node = _node(h)
    _hog(h, node, priority=low_priority, cpu=3000)
    run_job(h, _system(priority=100))
    assert bool(_evicted(h) if h.plans else []) == preempts
    if not preempts:
        assert h.updated_evals[-1].failed_tg_allocs["web"].dimension_exhausted == {"cpu": 1}


def test_sysbatch_does_not_preempt_by_default_but_can_be_enabled():
    h = Harness()
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    job, _ = run_job(h, _system(priority=100, type="sysbatch"))
    assert not h.plans and h.updated_evals[-1].failed_tg_allocs
    assert len(_rerun_with(h, job, sys_batch_scheduler_enabled=True)) == 1


def test_system_preemption_disabled_by_config():
    h = Harness()
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    h.state.set_scheduler_config(SchedulerConfiguration(preemption_config=PreemptionConfig(
        system_scheduler_enabled=False)))
    run_job(h, _system(priority=100))
    assert not h.plans and h.updated_evals[-1].failed_tg_allocs


def test_allocs_of_the_same_job_are_never_preempted():
    h = Harness()
    node = _node(h)
    job, _ = _hog(h, node, priority=20, cpu=3000, job_id="same")
    bigger = h.state.upsert_job(evolve(with_resources(small_job(2, id="same", priority=20), cpu=3000, memory_mb=64)))
    h.process(h.new_eval(bigger))
    assert all(not p.node_preemptions for p in h.plans)


# --- service and batch (off by default) ----------------------------------------------------
def test_service_job_does_not_preempt_by_default_and_blocks():
    h = Harness()
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    run_job(h, with_resources(small_job(1, priority=80), cpu=2000))
    assert not h.plans
    assert [e.status for e in h.created_evals] == ["blocked"]


def test_service_job_preempts_when_enabled():
    h = Harness()
    h.state.set_scheduler_config(SERVICE_PREEMPTION)
    node = _node(h)
    _, (victim,) = _hog(h, node, priority=20, cpu=3000)
    job, _ = run_job(h, with_resources(small_job(1, priority=80), cpu=2000))
    assert [a.id for a in _evicted(h)] == [victim.id]
    assert not h.created_evals  # placed: nothing blocked
    assert h.updated_evals[-1].status == "complete"


def test_batch_preemption_follows_its_own_flag():
    h = Harness()
    h.state.set_scheduler_config(SERVICE_PREEMPTION)  # service on, batch still off
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    batch = with_resources(evolve(mock_batch_job(priority=80), task_groups=[
        evolve(mock_batch_job().task_groups[0], count=1)]), cpu=2000, memory_mb=64)
    job, _ = run_job(h, batch)
    assert not h.plans
    assert len(_rerun_with(h, job, batch_scheduler_enabled=True)) == 1


def test_free_node_is_preferred_over_preempting():
    """Nomad selects without preemption first; only when nothing fits does it evict."""
    h = Harness()
    h.state.set_scheduler_config(SERVICE_PREEMPTION)
    full = _node(h)
    free = _node(h)
    _hog(h, full, priority=20, cpu=3000)
    run_job(h, with_resources(small_job(1, priority=80), cpu=2000))
    (alloc,) = placed(h)
    assert alloc.node_id == free.id and not _evicted(h)


# --- which allocs ---------------------------------------------------------------------------
def test_lowest_priority_alloc_is_evicted_first():
    h = Harness()
    node = _node(h)
    _, (mid,) = _hog(h, node, priority=40, cpu=1500)
    _, (lowest,) = _hog(h, node, priority=10, cpu=1500)
    run_job(h, _system(priority=100, cpu=1500))
    assert [a.id for a in _evicted(h)] == [lowest.id]


def test_closest_fitting_alloc_is_chosen_within_a_priority():
    h = Harness()
    node = _node(h, cpu=4000)  # 3900 usable after the 100 MHz node reservation
    _, (small,) = _hog(h, node, priority=20, cpu=400)
    _, (exact,) = _hog(h, node, priority=20, cpu=1500)
    _, (large,) = _hog(h, node, priority=20, cpu=1900)
    # free = 3900 - 3800 = 100; the system alloc needs 1500 -> 1400 missing
    run_job(h, _system(priority=100, cpu=1500))
    assert [a.id for a in _evicted(h)] == [exact.id]


def test_smallest_set_that_frees_enough():
    h = Harness()
    node = _node(h)
    _, smalls = _hog(h, node, priority=20, cpu=300, job_id="smalls", count=4)
    _, (big,) = _hog(h, node, priority=20, cpu=2600)
    # free = 3900 - 1200 - 2600 = 100; needs 3000: the big one and some small ones, not all
    run_job(h, _system(priority=100, cpu=3000))
    evicted = {a.id for a in _evicted(h)}
    assert big.id in evicted
    assert len(evicted) == 2  # 100 free + 2600 + 300 = 3000


def test_higher_priority_allocs_only_when_lower_ones_do_not_suffice():
    h = Harness()
    node = _node(h)
    _, (p10,) = _hog(h, node, priority=10, cpu=1000)
    _, (p30,) = _hog(h, node, priority=30, cpu=1000)
    _, (p50,) = _hog(h, node, priority=50, cpu=1800)
    # free 100; needs 2000: p10 (1000) is not enough, then the closest of the next priority
    run_job(h, _system(priority=100, cpu=2000))
    assert {a.id for a in _evicted(h)} == {p10.id, p30.id}
    assert p50.id not in {a.id for a in _evicted(h)}


def test_static_port_holder_is_evicted_even_when_cpu_is_free():
    h = Harness()
    node = _node(h)
    nets = [NetworkResource(mode="host", reserved_ports=[Port(label="admin", value=8080)])]
    _, (holder,) = _hog(h, node, priority=20, cpu=100, tg_fields={"networks": nets})
    _, (bystander,) = _hog(h, node, priority=20, cpu=100)
    sysjob = _system(priority=100, cpu=100)
    sysjob = evolve(sysjob, task_groups=[evolve(sysjob.task_groups[0], networks=nets)])
    run_job(h, sysjob)
    assert [a.id for a in _evicted(h)] == [holder.id]
    (alloc,) = placed(h)
    assert alloc.allocated_resources.shared.networks[0].reserved_ports[0].value == 8080


def test_port_held_by_a_higher_priority_job_cannot_be_freed():
    h = Harness()
    node = _node(h)
    nets = [NetworkResource(mode="host", reserved_ports=[Port(label="admin", value=8080)])]
    _hog(h, node, priority=95, cpu=100, tg_fields={"networks": nets})
    sysjob = _system(priority=100, cpu=100)
    sysjob = evolve(sysjob, task_groups=[evolve(sysjob.task_groups[0], networks=nets)])
    run_job(h, sysjob)
    assert not h.plans
    failed = h.updated_evals[-1].failed_tg_allocs["web"]
    assert failed.dimension_exhausted == {"network: reserved port collision": 1}


def test_max_parallel_spreads_evictions_across_groups():
    """Past migrate.max_parallel evictions of one group, Nomad adds a distance penalty."""
    h = Harness()
    node = _node(h)
    one = {"migrate": MigrateStrategy(max_parallel=1)}
    _, a_allocs = _hog(h, node, priority=20, cpu=900, job_id="a", count=2, tg_fields=one)
    _, b_allocs = _hog(h, node, priority=20, cpu=900, job_id="b", count=2, tg_fields=one)
    # free 300, needs 2000 -> two evictions: one of each job, not both of one
    run_job(h, _system(priority=100, cpu=2000))
    assert sorted(a.job_id for a in _evicted(h)) == ["a", "b"]


def test_node_whose_evictions_have_lower_priority_wins():
    h = Harness()
    h.state.set_scheduler_config(SERVICE_PREEMPTION)
    cheap, dear = _node(h), _node(h)
    _hog(h, cheap, priority=10, cpu=3000)
    _hog(h, dear, priority=60, cpu=3000)
    run_job(h, with_resources(small_job(1, priority=90), cpu=2000))
    (alloc,) = placed(h)
    assert alloc.node_id == cheap.id
    meta = alloc.metrics.score_meta_data
    assert meta[0].scores["preemption"] == pytest.approx(preemption_score(net_priority([10])))


def test_two_placements_never_evict_the_same_alloc():
    h = Harness()
    h.state.set_scheduler_config(SERVICE_PREEMPTION)
    node = _node(h)
    _hog(h, node, priority=10, cpu=1900, job_id="l1")
    _hog(h, node, priority=10, cpu=1900, job_id="l2")
    job, _ = run_job(h, with_resources(small_job(2, priority=90), cpu=1800))
    evicted = [a.id for a in _evicted(h)]
    assert len(evicted) == len(set(evicted)) == 2 and len(placed(h)) == 2
    assert {e.job_id for e in h.preemption_evals} == {"l1", "l2"}


def test_plan_annotations_count_preemptions():
    h = Harness()
    node = _node(h)
    _, (victim,) = _hog(h, node, priority=20, cpu=3000)
    run_job(h, _system(priority=100))
    ann = h.plans[-1].annotations
    assert ann.desired_tg_updates["web"].preemptions == 1
    assert [a.id for a in ann.preempted_allocs] == [victim.id]


# --- the plan applier ---------------------------------------------------------------------
class DryRun(Harness):
    """Records plans and reports them committed without changing the state."""

    def submit_plan(self, plan):
        self.plans.append(plan)
        return PlanResult(node_allocation=plan.node_allocation, node_preemptions=plan.node_preemptions), None


def test_applier_counts_evictions_when_rechecking_fit():
    h = DryRun()
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    run_job(h, _system(priority=100))
    plan = h.plans[-1]
    result, verdicts = evaluate_plan(h.state, plan)
    assert all(v.fits for v in verdicts) and result.node_preemptions and result.node_allocation
    result, verdicts = evaluate_plan(h.state, evolve(plan, node_preemptions={}))
    assert result.rejected_nodes == [node.id] and not result.node_allocation


def test_applier_rejects_a_preempting_plan_when_the_node_filled_meanwhile():
    h = DryRun()
    node = _node(h)
    _hog(h, node, priority=20, cpu=3000)
    run_job(h, _system(priority=100))
    _hog(h, node, priority=99, cpu=2000)  # another writer took room the eviction would free
    result, _ = evaluate_plan(h.state, h.plans[-1])
    assert result.rejected_nodes == [node.id]
    assert not result.node_allocation and not result.node_preemptions  # nothing evicted for nothing


def test_applier_drops_evictions_of_allocs_that_already_stopped():
    h = Harness()
    node = _node(h)
    _, (victim,) = _hog(h, node, priority=20, cpu=3000)
    job = h.state.upsert_job(_system(priority=100))
    h.verify_fit = False
    from yurt.structs import Plan

    plan = Plan(eval_id="e", job=job)
    plan.append_preempted_alloc(victim, "new-alloc")
    h.add_alloc(evolve(victim, client_status="complete"))
    result, _ = evaluate_plan(h.state, plan)
    assert result.node_preemptions == {}


def test_fsm_commits_evictions_and_preemption_evals():
    from yurt.server.plan_apply import plan_apply_command, preemption_evals
    from yurt.state import StateStore
    from yurt.state.commands import JobRegister, NodeRegister, PlanApply
    from yurt.structs import Plan

    store = StateStore()
    node = mock_node()
    store.apply(NodeRegister(node=node))
    low = with_resources(small_job(1, id="low", priority=20), cpu=3000, memory_mb=64)
    store.apply(JobRegister(job=low))
    low = store.snapshot().job_by_id("default", "low")
    victim = mock_alloc(low, node)
    store.apply(PlanApply(eval_id="e0", job=low, node_allocation={node.id: [victim]}))
    plan = Plan(eval_id="e1")
    plan.append_preempted_alloc(store.snapshot().alloc_by_id(victim.id), "winner")
    result, _ = evaluate_plan(store.snapshot(), plan)
    evals = preemption_evals(store.snapshot(), result, 5)
    store.apply(plan_apply_command(plan, result, 5, evals))
    snap = store.snapshot()
    stored = snap.alloc_by_id(victim.id)
    assert (stored.desired_status, stored.desired_description, stored.preempted_by_allocation) == (
        "evict", "Preempted by alloc ID winner", "winner")
    (ev,) = [e for e in snap.evals() if e.job_id == "low"]
    assert (ev.triggered_by, ev.status) == ("preemption", "pending")


# --- the pure selection ------------------------------------------------------------------
def _cand(priority, cpu, ports=(), job="j", group="g", max_parallel=0):
    from yurt.structs import Allocation

    alloc = Allocation(id=f"{job}-{priority}-{cpu}-{len(ports)}", job_id=job, task_group=group)
    return Candidate(alloc, priority, cpu, 0, 0, frozenset(), frozenset(ports), max_parallel)


def test_select_returns_none_when_candidates_cannot_free_enough():
    assert select_preemptions(Need(cpu=1000), [_cand(10, 400), _cand(20, 500)]) is None


def test_select_needs_nothing_when_nothing_is_missing():
    assert select_preemptions(Need(cpu=-5), [_cand(10, 400)]) == []


def test_distance_is_zero_for_an_exact_fit_and_grows_with_mismatch():
    assert resource_distance((1000, 256, 0), (1000, 256, 0)) == 0
    assert resource_distance((1000, 256, 0), (500, 256, 0)) < resource_distance((1000, 256, 0), (100, 256, 0))


def test_preemption_score_falls_with_net_priority():
    assert net_priority([50]) == 51 and net_priority([50, 50]) == 52
    assert preemption_score(net_priority([10])) > preemption_score(net_priority([80])) > 0.5
    assert preemption_score(2048) == pytest.approx(0.5)


def test_job_plan_lists_preemptions_as_nomad_does():
    from yurt.cli.job_plan import format_preemptions

    one = [{"ID": "5a1d", "JobID": "low", "TaskGroup": "g", "JobType": "service", "Namespace": "default"}]
    assert format_preemptions(one).splitlines() == ["Alloc ID  Job ID  Task Group", "5a1d      low     g"]
    many = [{"ID": str(i), "JobID": "low" if i % 2 else "batchy", "TaskGroup": "g",
             "JobType": "service" if i % 2 else "batch", "Namespace": "default"} for i in range(12)]
    lines = format_preemptions(many).splitlines()
    assert lines[0].split() == ["Job", "ID", "Namespace", "Job", "Type", "Preemptions"]
    assert sorted(line.split() for line in lines[1:]) == [["batchy", "default", "batch", "6"],
                                                          ["low", "default", "service", "6"]]
