"""Job operations of the job lifecycle: force a periodic launch, mark a version stable,
and the scale status of a job (Nomad's Periodic.Force, Job.Stable, Job.ScaleStatus)."""

from dataclasses import dataclass
from typing import Any

from .errors import EndpointError


@dataclass
class ForceResult:
    eval_id: str
    eval_create_index: int
    index: int


def force_periodic(server, namespace: str, job_id: str) -> ForceResult:
    from yurt.server.periodic import PeriodicError

    if not job_id:
        raise EndpointError(400, "missing job ID for evaluation")
    job = server.state.snapshot().job_by_id(namespace, job_id)
    if job is None:
        raise EndpointError(404, "job not found")
    if job.periodic is None:
        raise EndpointError(400, "can't force launch non-periodic job")
    try:
        launched = server.periodic.force(namespace, job.id)
    except PeriodicError as exc:
        raise EndpointError(400, f'force launch for job "{job.id}" failed: {exc}') from None
    return ForceResult(launched.eval.id, launched.index, launched.index)


def set_job_stable(server, namespace: str, job_id: str, version: int, stable: bool) -> int:
    from yurt.state.commands import JobStabilitySet

    if not job_id:
        raise EndpointError(400, "missing job ID for marking job as stable")
    if server.state.snapshot().job_version(namespace, job_id, version) is None:
        raise EndpointError(404, f'job "{job_id}" in namespace "{namespace}" at version {version} not found')
    return server.state.apply(JobStabilitySet(namespace=namespace, job_id=job_id, version=version, stable=stable))


def _health(alloc) -> bool | None:
    status = alloc.deployment_status
    return None if status is None else status.healthy


def job_scale_status(snapshot, namespace: str, job_id: str) -> dict[str, Any]:
    """`GET /v1/job/:id/scale`: desired, placed, running and health counts per group."""
    job = snapshot.job_by_id(namespace, job_id)
    if job is None:
        raise EndpointError(404, "job not found")
    from yurt.structs import to_wire

    recorded = snapshot.scaling_events(namespace, job_id)
    events = recorded.events if recorded is not None else {}
    groups: dict[str, dict[str, Any]] = {
        tg.name: {"Desired": tg.count, "Placed": 0, "Running": 0, "Healthy": 0, "Unhealthy": 0,
                  "Events": [to_wire(e) for e in events[tg.name]] if tg.name in events else None}
        for tg in job.task_groups or ()
    }
    for alloc in snapshot.allocs_by_job(namespace, job_id):
        group = groups.get(alloc.task_group)
        if group is None or alloc.terminal or getattr(alloc.deployment_status, "canary", False):
            continue
        group["Placed"] += 1
        group["Running"] += alloc.client_status == "running"
        health = _health(alloc)
        group["Healthy"] += health is True
        group["Unhealthy"] += health is False
    return {"JobID": job.id, "Namespace": job.namespace, "JobCreateIndex": job.create_index,
            "JobModifyIndex": job.modify_index, "JobStopped": job.stop, "TaskGroups": groups}


@dataclass
class ScaleRequest:
    group: str
    count: int | None = None
    message: str = ""
    error: bool = False
    meta: dict[str, Any] | None = None
    job_modify_index: int = 0


def _check_scale(job, req: ScaleRequest):
    """Nomad's Job.Scale checks; returns the target task group."""
    if req.count is not None:
        if req.count < 0:
            raise EndpointError(400, "scaling action count can't be negative")
        if req.error:
            raise EndpointError(400, "scaling action should not contain count if error is true")
        if job.type == "system" and req.count > 1:
            raise EndpointError(400, 'jobs of type "system" can only be scaled between 0 and 1')
    group = job.lookup_task_group(req.group)
    if group is None:
        raise EndpointError(400, f'task group "{req.group}" specified for scaling does not exist in job')
    policy = group.scaling or {}
    if req.count is not None and policy:
        low, high = policy.get("Min"), policy.get("Max")
        if low is not None and req.count < low:
            raise EndpointError(400, f"group count was less than scaling policy minimum: {req.count} < {low}")
        if high is not None and high < req.count:
            raise EndpointError(400, f"group count was greater than scaling policy maximum: {req.count} > {high}")
    if req.count is not None and req.job_modify_index and req.job_modify_index != job.job_modify_index:
        from .jobs import ENFORCE_PREFIX

        raise EndpointError(400, f"{ENFORCE_PREFIX} {req.job_modify_index}: job exists with conflicting job "
                                 f"modify index: {job.job_modify_index}")
    return group


def scale_job(server, namespace: str, job_id: str, req: ScaleRequest):
    """`job scale` (Nomad's Job.Scale): a new job version with the group's count, a
    `job-scaling` eval (none for periodic and parameterized jobs) and a scaling event."""
    from yurt.state.commands import JobRegister, ScalingEventRegister
    from yurt.state.scaling_events import ScalingEvent
    from yurt.structs import TRIGGER_JOB_SCALING, evolve

    from .dispatch import REGISTRATION_DISABLED
    from .jobs import RegisterResult, canonical_valid_job, job_needs_eval, new_job_eval

    snapshot = server.state.snapshot()
    if snapshot.scheduler_config().reject_job_registration:
        raise EndpointError(403, REGISTRATION_DISABLED)
    if not req.group:
        raise EndpointError(400, "missing task group name for scaling action")
    job = snapshot.job_by_id(namespace, job_id)
    if job is None:
        raise EndpointError(404, f'job "{job_id}" not found')
    group = _check_scale(job, req)
    now = server.now_ns()
    event = ScalingEvent(time=now, count=req.count, previous_count=group.count, message=req.message,
                         error=req.error, meta=req.meta)
    if req.count is None:
        index = server.state.apply(ScalingEventRegister(namespace=namespace, job_id=job.id, task_group=group.name,
                                                        event=event))
        return RegisterResult(job_modify_index=job.modify_index, index=index)
    groups = [evolve(tg, count=req.count) if tg.name == group.name else tg for tg in job.task_groups]
    scaled = canonical_valid_job(evolve(job, task_groups=groups, create_index=0, modify_index=0,
                                        job_modify_index=0, status="", stable=False))
    ev = new_job_eval(scaled, TRIGGER_JOB_SCALING, now) if job_needs_eval(scaled) else None
    if ev is not None:
        event = evolve(event, eval_id=ev.id)
    register_index, event_index = server.state.apply_batch([
        JobRegister(job=scaled, eval=ev, submit_time=now),
        ScalingEventRegister(namespace=namespace, job_id=job.id, task_group=group.name, event=event),
    ])
    stored = server.state.snapshot().job_by_id(namespace, job.id)
    return RegisterResult(eval_id=ev.id if ev else "", eval_create_index=register_index if ev else 0,
                          job_modify_index=stored.job_modify_index, index=event_index)
