"""Deployments in the generic scheduler: rolling updates under max_parallel, canaries and
promotion, cancelled and failed deployments, completion. Runs the real state store and
plan applier (synchronously), so the deployment counts the FSM keeps are exercised too."""

import pytest

from yurt.state.commands import (
    AllocClientUpdate,
    AllocUpdate,
    DeploymentPromote,
    DeploymentStatusSet,
)
from yurt.state.txn import StateError
from yurt.structs import SECOND, evolve

from .deploy_cluster import NOW, Cluster, changed, service, versions


@pytest.fixture
def c():
    return Cluster()


def test_initial_register_creates_running_deployment_with_all_allocs(c):
    job = c.register(service(3))
    d = c.deployment(job.id)
    assert d is not None and d.status == "running" and d.status_description == "Deployment is running"
    assert d.job_version == 0 and d.task_groups["web"].desired_total == 3
    assert d.task_groups["web"].placed_allocs == 3
    assert all(a.deployment_id == d.id for a in c.live(job.id))
    assert c.evals[-1].deployment_id == d.id


def test_deployment_succeeds_when_all_healthy_and_marks_version_stable(c):
    job = c.register(service(3))
    c.settle(job.id)
    d = c.deployment(job.id)
    assert d.task_groups["web"].healthy_allocs == 3
    c.run(job_id=job.id)
    d = c.deployment(job.id)
    assert d.status == "successful" and d.status_description == "Deployment completed successfully"
    assert c.job(job.id).stable
    assert c.store.snapshot().job_version("default", job.id, 0).stable


def test_no_deployment_without_update_block(c):
    c.register(service(2), strip_update=True)
    assert c.deployment("web-svc") is None


def test_max_parallel_zero_means_no_deployment(c):
    c.register(service(2, max_parallel=0))
    assert c.deployment("web-svc") is None


def test_batch_jobs_have_no_deployments(c):
    job = evolve(service(2), type="batch")
    c.register(job)
    assert c.deployment("web-svc") is None


def test_rolling_update_replaces_one_at_a_time(c):
    job = c.register(service(3))
    c.settle(job.id)
    c.run(job_id=job.id)
    job2 = c.register(changed(job))
    assert job2.version == 1
    assert versions(c) == [0, 0, 1]
    d = c.deployment(job.id)
    assert d.job_version == 1 and d.task_groups["web"].desired_total == 3
    # nothing more while the new alloc is not healthy
    c.run(job_id=job.id)
    assert versions(c) == [0, 0, 1]
    du = c.store.snapshot()  # noqa: F841
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [0, 1, 1]
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [1, 1, 1]
    c.settle(job.id)
    c.run(job_id=job.id)
    d = c.deployment(job.id)
    assert d.status == "successful" and d.task_groups["web"].healthy_allocs == 3
    assert c.job(job.id).stable


def test_max_parallel_two_replaces_two_at_a_time(c):
    job = c.register(service(4, max_parallel=2))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    assert versions(c) == [0, 0, 1, 1]


def test_new_version_cancels_old_active_deployment(c):
    job = c.register(service(3))
    first = c.deployment(job.id)
    c.register(changed(job))
    old = c.store.snapshot().deployment_by_id(first.id)
    assert old.status == "cancelled"
    assert old.status_description == "Cancelled due to newer version of job"
    assert c.deployment(job.id).id != first.id


def test_stopping_job_cancels_deployment(c):
    job = c.register(service(2))
    first = c.deployment(job.id)
    c.register(evolve(job, stop=True))
    old = c.store.snapshot().deployment_by_id(first.id)
    assert old.status == "cancelled" and old.status_description == "Cancelled because job is stopped"


def test_unhealthy_alloc_stops_the_rollout(c):
    job = c.register(service(3))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    new = [a for a in c.live(job.id) if a.job_version == 1]
    c.report(new, healthy=False)
    c.run(job_id=job.id)
    assert versions(c) == [0, 0, 1]
    assert c.deployment(job.id).task_groups["web"].unhealthy_allocs == 1


def test_failed_deployment_places_nothing_more(c):
    job = c.register(service(3))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    d = c.deployment(job.id)
    c.store.apply(DeploymentStatusSet(deployment_id=d.id, status="failed",
                                      status_description="Deployment marked as failed"))
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [0, 0, 1]


def test_paused_deployment_waits_then_resumes(c):
    job = c.register(service(3))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    d = c.deployment(job.id)
    c.store.apply(DeploymentStatusSet(deployment_id=d.id, status="paused", status_description="Deployment is paused"))
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [0, 0, 1]
    c.store.apply(DeploymentStatusSet(deployment_id=d.id, status="running", status_description="Deployment is running"))
    c.run(job_id=job.id)
    assert versions(c) == [0, 1, 1]


def test_canary_placed_first_and_old_allocs_kept(c):
    job = c.register(service(3, canary=1))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    live = c.live(job.id)
    assert sorted(a.job_version for a in live) == [0, 0, 0, 1]
    canary = next(a for a in live if a.job_version == 1)
    assert canary.deployment_status.canary
    d = c.deployment(job.id)
    assert d.task_groups["web"].desired_canaries == 1
    assert d.task_groups["web"].placed_canaries == [canary.id]
    assert d.status_description == "Deployment is running but requires manual promotion"
    # healthy canary: still waits for promotion
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [0, 0, 0, 1]
    assert c.deployment(job.id).status == "running"


def test_promotion_replaces_the_rest(c):
    job = c.register(service(3, canary=1))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    c.settle(job.id)
    d = c.deployment(job.id)
    c.store.apply(DeploymentPromote(deployment_id=d.id, all=True))
    c.run(job_id=job.id)
    # the old alloc named like the canary stops, one more is replaced (max_parallel 1)
    assert versions(c) == [0, 1, 1]
    for _ in range(3):
        c.settle(job.id)
        c.run(job_id=job.id)
    assert versions(c) == [1, 1, 1]
    d = c.deployment(job.id)
    assert d.status == "successful" and d.task_groups["web"].promoted
    assert c.job(job.id).stable


def test_promote_refuses_unhealthy_canaries(c):
    job = c.register(service(3, canary=1))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    d = c.deployment(job.id)
    with pytest.raises(StateError, match='Task group "web" has 0/1 healthy allocations'):
        c.store.apply(DeploymentPromote(deployment_id=d.id, all=True))


def test_auto_promote_description(c):
    job = c.register(service(2, canary=1, auto_promote=True))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    assert c.deployment(job.id).status_description == "Deployment is running pending automatic promotion"


def test_new_version_stops_unpromoted_canaries(c):
    job = c.register(service(3, canary=1))
    c.settle(job.id)
    c.run(job_id=job.id)
    c.register(changed(job))
    canary = next(a for a in c.live(job.id) if a.job_version == 1)
    c.register(changed(job, "v3"))
    assert c.store.snapshot().alloc_by_id(canary.id).desired_status == "stop"
    live = c.live(job.id)
    assert sorted(a.job_version for a in live) == [0, 0, 0, 2]


def test_count_change_in_place_creates_deployment(c):
    job = c.register(service(2))
    c.settle(job.id)
    c.run(job_id=job.id)
    first = c.deployment(job.id)
    scaled = evolve(job, task_groups=[evolve(job.task_groups[0], count=4)])
    c.register(scaled)
    d = c.deployment(job.id)
    assert d.id != first.id and d.job_version == 1
    live = c.live(job.id)
    assert len(live) == 4 and all(a.job_version == 1 for a in live)
    assert all(a.deployment_id == d.id for a in live)
    # in-place updated allocs have their health measured again
    assert sum(1 for a in live if a.deployment_status is None or a.deployment_status.healthy is None) == 4


def test_lost_alloc_replacement_makes_no_new_deployment(c):
    job = c.register(service(2))
    c.settle(job.id)
    c.run(job_id=job.id)
    d = c.deployment(job.id)
    assert d.status == "successful"
    victim = c.live(job.id)[0]
    c.store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=victim.id, client_status="failed")], updated_at=c.now))
    c.run(job_id=job.id)
    assert c.deployment(job.id).id == d.id


def test_progress_deadline_set_on_first_placement(c):
    job = c.register(service(2))
    state = c.deployment(job.id).task_groups["web"]
    from yurt.structs.timefmt import parse_rfc3339_ns
    assert parse_rfc3339_ns(state.require_progress_by) == NOW + 120 * SECOND
    c.now += 10 * SECOND
    c.settle(job.id)
    state = c.deployment(job.id).task_groups["web"]
    assert parse_rfc3339_ns(state.require_progress_by) == c.now + 120 * SECOND


def test_new_version_replaces_failed_alloc_that_may_not_reschedule(c):
    job = service(2)
    tg = job.task_groups[0]
    from yurt.structs import ReschedulePolicy

    job = evolve(job, task_groups=[evolve(tg, reschedule_policy=ReschedulePolicy(attempts=0, unlimited=False))])
    job = c.register(job)
    c.settle(job.id)
    c.run(job_id=job.id)
    victim = c.live(job.id)[0]
    c.store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=victim.id, client_status="failed")], updated_at=c.now))
    c.run(job_id=job.id)
    assert len(c.live(job.id)) == 1  # not rescheduled
    c.register(changed(job))
    c.settle(job.id)
    c.run(job_id=job.id)
    assert versions(c) == [1, 1]
    assert c.store.snapshot().alloc_by_id(victim.id).desired_status == "stop"
