"""Service job scenarios through the harness: placement, packing, counts, updates, stops."""

from yurt.structs import MINUTE, SECOND, Constraint, SchedulerConfiguration, evolve
from yurt.structs.node import NodeMemoryResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_alloc, mock_job, mock_node

from .helpers import cluster, placed, run_job, small_job, stopped, with_count, with_resources


def test_places_every_alloc_with_unique_names():
    h = cluster(10)
    job, ev = run_job(h, mock_job())
    allocs = placed(h)
    assert len(allocs) == 10
    assert sorted(a.index for a in allocs) == list(range(10))
    assert all(a.name == f"{job.id}.web[{a.index}]" for a in allocs)
    done = h.updated_evals[-1]
    assert done.id == ev.id and done.status == "complete"
    assert done.queued_allocations == {"web": 0}
    assert done.failed_tg_allocs is None
    assert h.plans[-1].annotations.desired_tg_updates["web"].place == 10


def test_placed_alloc_records_resources_metrics_and_eval():
    h = cluster(3)
    job, ev = run_job(h, small_job(1))
    (alloc,) = placed(h)
    assert alloc.eval_id == ev.id and alloc.job is None and h.plans[-1].job.id == job.id
    task = alloc.allocated_resources.tasks["web"]
    assert (task.cpu.cpu_shares, task.memory.memory_mb) == (500, 256)
    assert alloc.allocated_resources.shared.disk_mb == 150
    assert alloc.metrics.nodes_evaluated >= 2
    assert alloc.metrics.score_meta_data and "binpack" in alloc.metrics.score_meta_data[0].scores
    stored = h.state.alloc_by_id(alloc.id)
    assert stored.job is not None and stored.job.id == job.id


def test_binpack_puts_second_alloc_on_the_fuller_node():
    h = cluster(2)
    run_job(h, small_job(1, id="first"))
    (first,) = placed(h)
    run_job(h, small_job(1, id="second"))
    (second,) = placed(h)
    assert second.node_id == first.node_id


def test_binpack_prefers_node_with_existing_load():
    h = Harness()
    empty = h.add_node(mock_node())
    busy = h.add_node(mock_node())
    other = with_resources(small_job(1, id="other"), cpu=2000, memory_mb=4000)
    h.add_alloc(mock_alloc(other, busy))
    run_job(h, small_job(1, id="web"))
    (alloc,) = placed(h)
    assert alloc.node_id == busy.id != empty.id


def test_spread_algorithm_prefers_the_emptier_node():
    h = Harness()
    h.state.set_scheduler_config(SchedulerConfiguration(scheduler_algorithm="spread"))
    h.add_node(mock_node())
    busy = h.add_node(mock_node())
    other = with_resources(small_job(1, id="other"), cpu=2000, memory_mb=4000)
    h.add_alloc(mock_alloc(other, busy))
    run_job(h, small_job(1, id="web"))
    (alloc,) = placed(h)
    assert alloc.node_id != busy.id


def test_count_up_places_missing_indexes():
    h = cluster(5)
    job, _ = run_job(h, small_job(3))
    old = {a.id for a in h.job_allocs(job)}
    run_job(h, with_count(job, 5))
    new = [a for a in placed(h) if a.id not in old]
    assert sorted(a.index for a in new) == [3, 4]
    assert h.plans[-1].annotations.desired_tg_updates["web"].in_place_update == 3
    assert len(h.job_allocs(job)) == 5


def test_count_down_stops_highest_indexes_first():
    h = cluster(5)
    job, _ = run_job(h, small_job(5))
    run_job(h, with_count(job, 2))
    assert sorted(a.index for a in stopped(h)) == [2, 3, 4]
    assert all(a.desired_description == "alloc not needed due to job update" for a in stopped(h))
    assert sorted(a.index for a in h.job_allocs(job)) == [0, 1]
    assert h.plans[-1].annotations.desired_tg_updates["web"].stop == 3


def test_freed_index_is_reused():
    h = cluster(3)
    job, _ = run_job(h, small_job(3))
    victim = next(a for a in h.job_allocs(job) if a.index == 1)
    h.state.upsert_alloc(evolve(victim, desired_status="stop"))
    ev = h.new_eval(job)
    h.process(ev)
    assert [a.index for a in placed(h)] == [1]


def test_stopped_job_stops_everything():
    h = cluster(3)
    job, _ = run_job(h, small_job(3))
    run_job(h, evolve(job, stop=True))
    assert len(stopped(h)) == 3
    assert not placed(h)
    assert h.job_allocs(job) == []
    assert h.updated_evals[-1].status == "complete"


def test_deregistered_job_stops_everything():
    h = cluster(2)
    job, _ = run_job(h, small_job(2))
    h.state.delete_job(job.namespace, job.id)
    ev = h.new_eval(job, "job-deregister")
    h.process(ev)
    assert len(stopped(h)) == 2 and h.job_allocs(job) == []


def test_removed_group_is_stopped():
    h = cluster(2)
    job, _ = run_job(h, small_job(2))
    renamed = evolve(job.task_groups[0], name="api")
    run_job(h, evolve(job, task_groups=[renamed]))
    assert {a.task_group for a in stopped(h)} == {"web"}
    assert {a.task_group for a in placed(h)} == {"api"}


def test_lost_node_allocs_are_replaced_elsewhere():
    h = cluster(3)
    job, _ = run_job(h, small_job(2))
    victim = h.job_allocs(job)[0]
    node = h.state.node_by_id(victim.node_id)
    h.add_node(evolve(node, status="down"))
    h.process(h.new_eval(job, "node-update", node_id=node.id))
    (lost,) = stopped(h)
    assert lost.id == victim.id and lost.client_status == "lost"
    assert lost.desired_description == "alloc is lost since its node is down"
    (replacement,) = placed(h)
    assert replacement.name == victim.name and replacement.previous_allocation == victim.id
    assert replacement.node_id != node.id
    assert h.state.alloc_by_id(victim.id).next_allocation == replacement.id


def test_lost_alloc_not_replaced_when_prevented():
    h = cluster(3)
    job = small_job(1)
    job = evolve(job, task_groups=[evolve(job.task_groups[0], prevent_reschedule_on_lost=True)])
    job, _ = run_job(h, job)
    victim = h.job_allocs(job)[0]
    h.add_node(evolve(h.state.node_by_id(victim.node_id), status="down"))
    h.process(h.new_eval(job, "node-update"))
    assert len(stopped(h)) == 1 and not placed(h)


def test_inplace_update_for_non_destructive_change():
    h = cluster(3)
    job, _ = run_job(h, small_job(2))
    before = {a.id: a.node_id for a in h.job_allocs(job)}
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], kill_timeout=30 * SECOND)
    job2, _ = run_job(h, evolve(job, priority=60, task_groups=[evolve(tg, tasks=[task])]))
    updates = placed(h)
    assert {a.id: a.node_id for a in updates} == before
    assert not stopped(h)
    assert all(a.job_version == job2.version for a in updates)
    assert h.plans[-1].annotations.desired_tg_updates["web"].in_place_update == 2


def test_destructive_update_when_env_changes():
    h = cluster(3)
    job, _ = run_job(h, small_job(2))
    old_ids = {a.id for a in h.job_allocs(job)}
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], env={"FOO": "baz"})
    run_job(h, evolve(job, task_groups=[evolve(tg, tasks=[task])]))
    assert {a.id for a in stopped(h)} == old_ids
    assert all(a.desired_description == "alloc is being updated due to job update" for a in stopped(h))
    new = placed(h)
    assert len(new) == 2 and {a.previous_allocation for a in new} == old_ids
    assert h.plans[-1].annotations.desired_tg_updates["web"].destructive_update == 2


def test_destructive_update_when_resources_change():
    h = cluster(3)
    job, _ = run_job(h, small_job(1))
    run_job(h, with_resources(job, cpu=700))
    assert len(stopped(h)) == 1 and len(placed(h)) == 1
    assert placed(h)[0].allocated_resources.tasks["web"].cpu.cpu_shares == 700


def test_unchanged_job_is_a_noop():
    h = cluster(3)
    job, _ = run_job(h, small_job(2))
    plans = len(h.plans)
    h.process(h.new_eval(job))
    assert len(h.plans) == plans  # no-op plans are not submitted
    assert h.updated_evals[-1].status == "complete"


def test_draining_and_ineligible_nodes_are_not_used():
    h = Harness()
    from yurt.structs import DrainStrategy

    h.add_node(mock_node(drain_strategy=DrainStrategy(deadline=MINUTE)))
    h.add_node(mock_node(scheduling_eligibility="ineligible"))
    good = h.add_node(mock_node())
    run_job(h, small_job(1))
    assert placed(h)[0].node_id == good.id


def test_migrating_alloc_on_draining_node_is_replaced():
    from yurt.structs import DesiredTransition, DrainStrategy

    h = cluster(2)
    job, _ = run_job(h, small_job(1))
    alloc = h.job_allocs(job)[0]
    h.state.upsert_alloc(evolve(alloc, desired_transition=DesiredTransition(migrate=True)))
    node = h.state.node_by_id(alloc.node_id)
    h.add_node(evolve(node, drain_strategy=DrainStrategy(deadline=MINUTE)))
    h.process(h.new_eval(job, "node-drain"))
    assert [a.desired_description for a in stopped(h)] == ["alloc is being migrated"]
    (new,) = placed(h)
    assert new.node_id != node.id and new.name == alloc.name


def test_anti_affinity_spreads_same_group_across_nodes():
    h = cluster(4)
    job, _ = run_job(h, small_job(4))
    assert len({a.node_id for a in placed(h)}) == 4


def test_reserved_cores_are_assigned_exclusively():
    h = cluster(1)
    job = small_job(3)
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], resources=evolve(tg.tasks[0].resources, cpu=0, cores=2))
    job, ev = run_job(h, evolve(job, task_groups=[evolve(tg, tasks=[task], networks=None)]))
    allocs = placed(h)
    assert len(allocs) == 2
    cores = [tuple(a.allocated_resources.tasks["web"].cpu.reserved_cores) for a in allocs]
    assert sorted(cores) == [(0, 1), (2, 3)]
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"cores": 1}


def test_determinism_for_the_same_eval_id():
    def run():
        h = Harness()
        for i in range(20):
            h.add_node(mock_node(id=f"00000000-0000-4000-8000-{i:012d}"))
        job = h.state.upsert_job(small_job(8, id="det"))
        ev = h.new_eval(job, id="11111111-2222-4333-8444-555555555555")
        h.process(ev)
        return sorted((a.name, a.node_id, tuple(p.value for p in a.allocated_resources.shared.ports))
                      for a in placed(h))

    assert run() == run()


def test_different_eval_ids_shuffle_differently():
    def nodes_for(eval_id):
        h = Harness()
        for i in range(50):
            h.add_node(mock_node(id=f"00000000-0000-4000-8000-{i:012d}"))
        job = h.state.upsert_job(small_job(1, id="det"))
        h.process(h.new_eval(job, id=eval_id))
        return placed(h)[0].node_id

    chosen = {nodes_for(f"11111111-2222-4333-8444-{i:012d}") for i in range(8)}
    assert len(chosen) > 1


def test_unsupported_eval_type_fails_the_eval():
    h = cluster(1)
    job = h.state.upsert_job(small_job(1))
    h.process(h.new_eval(job), eval_type="_core")
    assert h.updated_evals[-1].status == "failed"
    assert "_core" in h.updated_evals[-1].status_description


def test_memory_capacity_respected_on_small_node():
    h = Harness()
    node = mock_node()
    h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=1280))))
    job, _ = run_job(h, with_resources(small_job(6), cpu=10, memory_mb=256))
    assert len(placed(h)) == 4  # (1280 - 256 reserved) / 256
    assert h.updated_evals[-1].queued_allocations == {"web": 2}


def test_group_constraint_and_job_constraint_both_apply():
    h = Harness()
    h.add_node(mock_node(meta={"rack": "r1"}))
    good = h.add_node(mock_node(meta={"rack": "r2"}))
    h.add_node(mock_node(meta={"rack": "r2"}, attributes={"kernel.name": "windows", "driver.exec": "1"}))
    job = small_job(1)
    job = evolve(job, task_groups=[evolve(job.task_groups[0], constraints=[Constraint(l_target="${meta.rack}", r_target="r2")])])
    run_job(h, job)
    assert placed(h)[0].node_id == good.id


def test_inplace_update_when_state_keeps_allocs_without_their_job():
    """A state that stores allocs without `job` still gets in-place updates, through
    the job's version history."""
    h = cluster(2)
    job, _ = run_job(h, small_job(2))
    for alloc in h.job_allocs(job):
        h.state.upsert_alloc(evolve(alloc, job=None))
    run_job(h, evolve(job, priority=70))
    assert not stopped(h)
    assert h.plans[-1].annotations.desired_tg_updates["web"].in_place_update == 2


def test_periodic_parent_job_places_nothing():
    from yurt.structs import PeriodicConfig

    h = cluster(2)
    job, _ = run_job(h, small_job(2, periodic=PeriodicConfig(spec="*/5 * * * *")))
    assert h.plans == [] and h.updated_evals[-1].status == "complete"
