"""Rescheduling, batch semantics, blocked evals and plan retries."""

from yurt.structs import Constraint, SECOND, evolve
from yurt.structs.alloc import RescheduleEvent, RescheduleTracker
from yurt.structs.node import NodeMemoryResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_batch_job, mock_node

from .helpers import cluster, placed, run_job, small_job, stopped, with_count, with_resources


def _fail(h: Harness, alloc, seconds_ago: int, **fields):
    failed = evolve(alloc, client_status="failed", modify_time=h.now_ns - seconds_ago * SECOND, **fields)
    return h.state.upsert_alloc(failed)


def test_failed_alloc_is_rescheduled_when_delay_passed():
    h = cluster(2)
    job, _ = run_job(h, small_job(1))
    (alloc,) = h.job_allocs(job)
    _fail(h, alloc, seconds_ago=10)
    h.process(h.new_eval(job, "alloc-failure"))
    (replacement,) = placed(h)
    assert replacement.previous_allocation == alloc.id and replacement.name == alloc.name
    assert replacement.node_id != alloc.node_id  # reschedule penalty
    (event,) = replacement.reschedule_tracker.events
    assert (event.prev_alloc_id, event.prev_node_id, event.delay) == (alloc.id, alloc.node_id, 5 * SECOND)
    assert [a.desired_description for a in stopped(h)] == ["alloc was rescheduled because it failed"]
    assert h.plans[-1].annotations.desired_tg_updates["web"].reschedule_now == 1


def test_failed_alloc_waits_for_delay_with_followup_eval():
    h = cluster(2)
    job, _ = run_job(h, small_job(1))
    (alloc,) = h.job_allocs(job)
    failed = _fail(h, alloc, seconds_ago=1)
    ev = h.new_eval(job, "alloc-failure")
    h.process(ev)
    (follow,) = h.created_evals
    assert follow.status == "pending" and follow.triggered_by == "alloc-failure"
    assert follow.wait_until == failed.modify_time + 5 * SECOND
    assert follow.previous_eval == ev.id
    (update,) = placed(h)
    assert update.id == alloc.id and update.followup_eval_id == follow.id
    assert h.updated_evals[-1].status == "complete"
    assert h.plans[-1].annotations.desired_tg_updates["web"].reschedule_later == 1
    # the follow-up eval reschedules it, even if processed a little early
    h.process(follow)
    (replacement,) = placed(h)
    assert replacement.previous_allocation == alloc.id


def test_failed_alloc_not_rescheduled_after_attempts_exhausted():
    h = cluster(2)
    job, _ = run_job(h, small_job(1))
    (alloc,) = h.job_allocs(job)
    events = [RescheduleEvent(reschedule_time=h.now_ns - i * 60 * SECOND, prev_alloc_id="x", delay=5 * SECOND)
              for i in (1, 2)]
    _fail(h, alloc, seconds_ago=10, reschedule_tracker=RescheduleTracker(events=events))
    plans = len(h.plans)
    h.process(h.new_eval(job, "alloc-failure"))
    assert len(h.plans) == plans and not h.created_evals


def test_exponential_delay_doubles_previous_delay():
    from yurt.scheduler.reschedule import next_delay
    from yurt.structs import ReschedulePolicy
    from yurt.testing.mock import mock_alloc

    policy = ReschedulePolicy(delay=30 * SECOND, delay_function="exponential", max_delay=100 * SECOND, unlimited=True)
    alloc = mock_alloc()
    assert next_delay(alloc, policy) == 30 * SECOND
    alloc = evolve(alloc, reschedule_tracker=RescheduleTracker(events=[RescheduleEvent(delay=30 * SECOND)]))
    assert next_delay(alloc, policy) == 60 * SECOND
    alloc = evolve(alloc, reschedule_tracker=RescheduleTracker(events=[RescheduleEvent(delay=60 * SECOND)]))
    assert next_delay(alloc, policy) == 100 * SECOND  # capped


def test_batch_completed_alloc_is_not_replaced():
    h = cluster(2)
    job, _ = run_job(h, with_count(mock_batch_job(), 2))
    a, b = h.job_allocs(job)
    h.state.upsert_alloc(evolve(a, client_status="complete"))
    h.state.upsert_alloc(evolve(b, client_status="complete", desired_status="stop"))
    plans = len(h.plans)
    h.process(h.new_eval(job, "alloc-failure"))
    assert len(h.plans) == plans


def test_batch_failed_alloc_is_replaced_once():
    h = cluster(2)
    job, _ = run_job(h, with_count(mock_batch_job(), 1))
    (alloc,) = h.job_allocs(job)
    _fail(h, alloc, seconds_ago=60)
    h.process(h.new_eval(job, "alloc-failure"))
    (replacement,) = placed(h)
    _fail(h, h.state.alloc_by_id(replacement.id), seconds_ago=60)
    plans = len(h.plans)
    h.process(h.new_eval(job, "alloc-failure"))
    assert len(h.plans) == plans  # one attempt per 24h


def test_batch_reruns_when_job_version_changes():
    h = cluster(2)
    job, _ = run_job(h, with_count(mock_batch_job(), 1))
    (alloc,) = h.job_allocs(job)
    h.state.upsert_alloc(evolve(alloc, client_status="complete"))
    tg = job.task_groups[0]
    run_job(h, evolve(job, task_groups=[evolve(tg, tasks=[evolve(tg.tasks[0], env={"V": "2"})])]))
    assert len(placed(h)) == 1 and placed(h)[0].job_version == 1


def test_batch_job_uses_limit_of_two():
    h = cluster(10)
    job, _ = run_job(h, with_count(mock_batch_job(), 1))
    assert placed(h)[0].metrics.nodes_evaluated == 2


def test_service_limit_grows_with_log_of_nodes():
    h = cluster(64)
    job, _ = run_job(h, small_job(1))
    assert placed(h)[0].metrics.nodes_evaluated == 6


def _too_big_job():
    return with_resources(small_job(2), cpu=100, memory_mb=100_000)


def test_failed_placement_creates_one_blocked_eval():
    h = cluster(2)
    job, ev = run_job(h, _too_big_job())
    (blocked,) = h.created_evals
    assert blocked.status == "blocked" and blocked.triggered_by == "queued-allocs"
    assert blocked.job_id == job.id and blocked.previous_eval == ev.id
    assert blocked.class_eligibility and all(blocked.class_eligibility.values())
    assert blocked.escaped_computed_class is False
    done = h.updated_evals[-1]
    assert done.status == "complete" and done.blocked_eval == blocked.id
    assert done.queued_allocations == {"web": 2}
    assert done.failed_tg_allocs["web"].coalesced_failures == 1


def test_blocked_eval_records_ineligible_classes_and_escaped():
    from yurt.structs import Constraint

    h = cluster(2)
    job = small_job(1, constraints=[Constraint(l_target="${node.unique.name}", r_target="nope")])
    run_job(h, job)
    (blocked,) = h.created_evals
    assert blocked.escaped_computed_class is True


def test_blocked_eval_that_still_fails_is_reblocked():
    h = cluster(1)
    job, _ = run_job(h, _too_big_job())
    (blocked,) = h.created_evals
    h.process(blocked)
    assert len(h.created_evals) == 1
    (reblocked,) = h.reblocked_evals
    assert reblocked.id == blocked.id and reblocked.failed_tg_allocs["web"]


def test_blocked_eval_places_after_capacity_arrives():
    h = Harness()
    node = mock_node()
    h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=512))))
    job, _ = run_job(h, with_resources(small_job(1), cpu=100, memory_mb=1024))
    (blocked,) = h.created_evals
    h.add_node(mock_node())
    h.process(blocked)
    assert len(placed(h)) == 1
    assert h.updated_evals[-1].id == blocked.id and h.updated_evals[-1].status == "complete"


def test_partial_commit_retries_with_refreshed_snapshot():
    h = cluster(4)
    rejected_once: set[str] = set()

    def reject_first(harness, plan):
        if rejected_once:
            return set()
        node_id = sorted(plan.node_allocation)[0]
        rejected_once.add(node_id)
        return {node_id}

    h.reject_nodes = reject_first
    job, _ = run_job(h, small_job(4))
    assert len(h.plans) == 2
    assert len(placed(h, 0)) == 4 and len(placed(h, 1)) == 1
    assert len(h.job_allocs(job)) == 4
    done = h.updated_evals[-1]
    assert done.status == "complete" and done.queued_allocations == {"web": 0}


def test_plan_rejected_every_time_fails_eval_after_max_attempts():
    h = cluster(2)
    h.reject_nodes = lambda harness, plan: set(plan.node_allocation)
    job, _ = run_job(h, small_job(1))
    assert len(h.plans) == 5
    done = h.updated_evals[-1]
    assert done.status == "failed" and done.status_description == "maximum attempts reached (5)"
    (blocked,) = h.created_evals
    assert blocked.triggered_by == "max-plan-attempts"


def test_batch_plan_attempts_are_two():
    h = cluster(2)
    h.reject_nodes = lambda harness, plan: set(plan.node_allocation)
    run_job(h, with_count(mock_batch_job(), 1))
    assert len(h.plans) == 2 and h.updated_evals[-1].status == "failed"


def test_applier_fit_check_rejects_overcommitted_node_and_scheduler_recovers():
    """Another writer fills a node between snapshot and commit; the retry avoids it."""
    h = cluster(2)
    job = h.state.upsert_job(with_resources(small_job(1), cpu=3000, memory_mb=256))
    ev = h.new_eval(job)
    from yurt.scheduler import new_scheduler

    sched = new_scheduler("service", h.state.snapshot(), h, h.now_ns)
    # fill both nodes' CPU except one after the snapshot was taken
    nodes = h.state.nodes()
    filler = h.state.upsert_job(with_resources(small_job(1, id="filler"), cpu=3000, memory_mb=256))
    from yurt.testing.mock import mock_alloc

    h.state.upsert_alloc(mock_alloc(filler, nodes[0]))
    sched.process(ev)
    allocs = h.job_allocs(job)
    assert len(allocs) == 1 and allocs[0].node_id == nodes[1].id


def test_usage_cache_sees_freed_capacity_in_the_next_eval():
    """Node usage is cached across evaluations; a stopped alloc must free its room."""
    h = Harness()
    node = mock_node()
    h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=1280))))
    big = with_resources(small_job(1, id="big"), cpu=100, memory_mb=1000)
    big, _ = run_job(h, big)
    assert len(h.job_allocs(big)) == 1
    other, _ = run_job(h, with_resources(small_job(1, id="other"), cpu=100, memory_mb=500))
    assert h.job_allocs(other) == []  # 1024 free, 1000 used
    (alloc,) = h.job_allocs(big)
    h.state.upsert_alloc(evolve(alloc, desired_status="stop"))
    h.process(h.new_eval(other))
    assert len(h.job_allocs(other)) == 1


def test_usage_cache_sees_new_allocs_from_other_schedulers():
    h = Harness()
    node = mock_node()
    node = h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=1280))))
    first, _ = run_job(h, with_resources(small_job(1, id="first"), cpu=100, memory_mb=600))
    from yurt.testing.mock import mock_alloc

    squatter = with_resources(small_job(1, id="squatter"), cpu=100, memory_mb=400)
    h.add_alloc(mock_alloc(squatter, node))
    second, _ = run_job(h, with_resources(small_job(1, id="second"), cpu=100, memory_mb=100))
    assert h.job_allocs(second) == []  # 1024 - 600 - 400 = 24 MB left


def test_partial_commits_with_progress_do_not_use_up_attempts():
    """Nomad resets the attempt count when a partial commit placed something."""
    h = cluster(8)

    def commit_only_one_node(harness, plan):
        return set(sorted(plan.node_allocation)[1:])

    h.reject_nodes = commit_only_one_node
    # distinct_hosts: one alloc per node, so each partial commit places exactly one alloc
    job, _ = run_job(h, small_job(7, constraints=[Constraint(operand="distinct_hosts", r_target="true")]))
    assert len(h.plans) >= 7  # more than the 5 attempts, each one placing something
    assert len(h.job_allocs(job)) == 7
    assert h.updated_evals[-1].status == "complete"
