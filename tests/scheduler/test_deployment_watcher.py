"""The deployment watcher's decisions (`server/deployment_watcher.py`) over a real state
store, with time passed in by hand: evals as allocs turn healthy, failure on unhealthy
allocs and at the progress deadline, auto-revert to the stable version, auto-promotion."""

from yurt.server.deployment_watcher import watch_deployments
from yurt.structs import SECOND

from .deploy_cluster import NOW, Cluster, changed, service, versions


def tick(c, seen):
    cmds = watch_deployments(c.store.snapshot(), c.now, seen)
    for cmd in cmds:
        c.store.apply(cmd)
    return cmds


def pending_watcher_evals(c, job_id="web-svc"):
    return [e for e in c.store.snapshot().evals_by_job("default", job_id)
            if e.triggered_by == "deployment-watcher" and e.status == "pending"]


def rolled_out_v1(c, **update):
    job = c.register(service(3, **update))
    c.settle(job.id)
    c.run(job_id=job.id)
    assert c.deployment(job.id).status == "successful"
    return c.register(changed(job))


def test_healthy_allocs_create_an_eval_once():
    c, seen = Cluster(), {}
    job = c.register(service(2))
    assert tick(c, seen) == []
    c.settle(job.id)
    cmds = tick(c, seen)
    assert len(pending_watcher_evals(c)) == 1 and len(cmds) == 1
    ev = pending_watcher_evals(c)[0]
    assert ev.deployment_id == c.deployment(job.id).id
    assert tick(c, seen) == []  # nothing new
    c.run(ev)
    assert c.deployment(job.id).status == "successful"


def test_watcher_evals_drive_a_rolling_update_to_success():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c)
    tick(c, seen)
    for _ in range(4):
        c.settle(job.id)
        for ev in pending_watcher_evals(c):
            tick(c, seen)
        tick(c, seen)
        for ev in pending_watcher_evals(c):
            c.run(ev)
    assert versions(c) == [1, 1, 1]
    assert c.deployment(job.id).status == "successful"
    assert c.job(job.id).stable


def test_unhealthy_alloc_fails_deployment():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c)
    new = [a for a in c.live(job.id) if a.job_version == 1]
    c.report(new, healthy=False)
    tick(c, seen)
    d = c.deployment(job.id)
    assert d.status == "failed" and d.status_description == "Failed due to unhealthy allocations"
    assert c.job(job.id).version == 1  # no auto_revert


def test_auto_revert_rolls_back_to_stable_version():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c, auto_revert=True)
    failed = c.deployment(job.id)
    c.report([a for a in c.live(job.id) if a.job_version == 1], healthy=False)
    tick(c, seen)
    failed = c.store.snapshot().deployment_by_id(failed.id)
    assert failed.status == "failed"
    assert failed.status_description == "Failed due to unhealthy allocations - rolling back to job version 0"
    reverted = c.job(job.id)
    assert reverted.version == 2 and not reverted.stable
    assert reverted.task_groups[0].tasks[0].env == {"FOO": "bar"}  # v0 spec, not v1 VERSION=v2
    ev = pending_watcher_evals(c)[0]
    c.run(ev)
    assert c.deployment(job.id).job_version == 2
    assert 2 in versions(c)


def test_auto_revert_without_stable_version():
    c, seen = Cluster(), {}
    job = c.register(service(2, auto_revert=True))
    c.report(c.live(job.id)[:1], healthy=False)
    tick(c, seen)
    d = c.deployment(job.id)
    assert d.status_description == "Failed due to unhealthy allocations - no stable job version to auto revert to"


def test_progress_deadline_fails_deployment():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c)
    c.now += 119 * SECOND
    tick(c, seen)
    assert c.deployment(job.id).status == "running"
    c.now += 5 * SECOND
    tick(c, seen)
    d = c.deployment(job.id)
    assert d.status == "failed" and d.status_description == "Failed due to progress deadline"


def test_healthy_alloc_pushes_progress_deadline():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c)
    c.now += 100 * SECOND
    c.settle(job.id)
    c.now += 100 * SECOND  # past the first deadline, within the moved one
    tick(c, seen)
    assert c.deployment(job.id).status == "running"


def test_auto_promote_when_canaries_healthy():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c, canary=1, auto_promote=True)
    tick(c, seen)
    assert not c.deployment(job.id).task_groups["web"].promoted
    c.settle(job.id)
    tick(c, seen)
    d = c.deployment(job.id)
    assert d.task_groups["web"].promoted and d.status_description == "Deployment is running"
    c.run(pending_watcher_evals(c)[0])
    assert versions(c) == [0, 1, 1]


def test_manual_canaries_wait_without_failing_at_deadline():
    c, seen = Cluster(), {}
    job = rolled_out_v1(c, canary=1)
    c.settle(job.id)
    c.now = NOW + 1000 * SECOND
    tick(c, seen)
    d = c.deployment(job.id)
    assert d.status == "running" and not d.task_groups["web"].promoted
