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
    groups: dict[str, dict[str, Any]] = {
        tg.name: {"Desired": tg.count, "Placed": 0, "Running": 0, "Healthy": 0, "Unhealthy": 0, "Events": None}
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
