"""`job dispatch`: a child of a parameterized job, with its payload and meta (Nomad's
Job.Dispatch and validateDispatchRequest, with Nomad's error texts).

The child's `Payload` holds the raw payload bytes (Nomad keeps them snappy-compressed;
yurt does not compress), travels to the client inside the alloc's job, and the client
writes it to the task's `dispatch_payload` file.
"""

import secrets
from dataclasses import dataclass

from yurt.structs import (
    EVAL_STATUS_PENDING,
    TRIGGER_JOB_REGISTER,
    Evaluation,
    Job,
    evolve,
    generate_uuid,
)

from .errors import EndpointError

DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024
DISPATCH_LAUNCH_SUFFIX = "/dispatch-"
JOB_MIN_PRIORITY = 1
JOB_MAX_PRIORITY = 100
REGISTRATION_DISABLED = "job registration, dispatch, and scale are disabled by the scheduler configuration"


@dataclass
class DispatchResult:
    dispatched_job_id: str
    eval_id: str = ""
    eval_create_index: int = 0
    job_create_index: int = 0
    index: int = 0


def dispatched_id(parent_id: str, id_prefix_template: str, unix_seconds: int) -> str:
    """Nomad's DispatchedID: `<parent>/dispatch-[<prefix>-]<unix>-<8 hex>`."""
    rand = secrets.token_hex(4)
    if id_prefix_template:
        return f"{parent_id}{DISPATCH_LAUNCH_SUFFIX}{id_prefix_template}-{unix_seconds}-{rand}"
    return f"{parent_id}{DISPATCH_LAUNCH_SUFFIX}{unix_seconds}-{rand}"


def validate_dispatch(job: Job, payload: bytes, meta: dict[str, str], priority: int,
                      max_priority: int = JOB_MAX_PRIORITY) -> None:
    """Nomad's validateDispatchRequest: payload rule, size limit, meta keys, priority."""
    config = job.parameterized_job
    if config.payload == "required" and not payload:
        raise EndpointError(400, "Payload is not provided but required by parameterized job")
    if config.payload == "forbidden" and payload:
        raise EndpointError(400, "Payload provided but forbidden by parameterized job")
    if len(payload) > DISPATCH_PAYLOAD_SIZE_LIMIT:
        raise EndpointError(400, f"Payload exceeds maximum size; {len(payload)} > {DISPATCH_PAYLOAD_SIZE_LIMIT}")
    allowed = set(config.meta_required or ()) | set(config.meta_optional or ())
    unpermitted = sorted(k for k in meta if k not in allowed)
    if unpermitted:
        raise EndpointError(400, f"Dispatch request included unpermitted metadata keys: [{' '.join(unpermitted)}]")
    missing = sorted(k for k in config.meta_required or () if k not in meta)
    if missing:
        raise EndpointError(400, f"Dispatch did not provide required meta keys: [{' '.join(missing)}]")
    if not JOB_MIN_PRIORITY <= priority <= max_priority:
        raise EndpointError(400, f"dispatch job priority must be between [{JOB_MIN_PRIORITY}, {max_priority}]")


def _existing_dispatch(snapshot, parent: Job, token: str) -> Job | None:
    for child in snapshot.by_prefix("jobs", parent.id, parent.namespace):
        if child.parent_id == parent.id and child.dispatch_idempotency_token == token:
            return child
    return None


def _parameterized_parent(snapshot, namespace: str, job_id: str) -> Job:
    if not job_id:
        raise EndpointError(400, "missing parameterized job ID")
    parent = snapshot.job_by_id(namespace, job_id)
    if parent is None:
        raise EndpointError(404, "parameterized job not found")
    if not parent.is_parameterized:
        raise EndpointError(400, f'Specified job "{job_id}" is not a parameterized job')
    if parent.stop:
        raise EndpointError(400, f'Specified job "{job_id}" is stopped')
    return parent


def dispatch_job(server, namespace: str, job_id: str, payload: bytes = b"", meta: dict[str, str] | None = None,
                 id_prefix_template: str = "", priority: int = 0, idempotency_token: str = "") -> DispatchResult:
    """Register the child job (and its eval) in one command, or return the child that
    already carries `idempotency_token`."""
    from yurt.state.commands import JobRegister

    meta = dict(meta or {})
    snapshot = server.state.snapshot()
    if snapshot.scheduler_config().reject_job_registration:
        raise EndpointError(403, REGISTRATION_DISABLED)
    parent = _parameterized_parent(snapshot, namespace, job_id)
    priority = priority or parent.priority
    validate_dispatch(parent, payload, meta, priority, getattr(server.config, "job_max_priority", JOB_MAX_PRIORITY))
    if idempotency_token:
        found = _existing_dispatch(snapshot, parent, idempotency_token)
        if found is not None:
            return DispatchResult(dispatched_job_id=found.id, job_create_index=found.create_index,
                                  index=found.modify_index)
    now = server.now_ns()
    child_id = dispatched_id(parent.id, id_prefix_template, now // 1_000_000_000)
    child = evolve(
        parent, id=child_id, name=child_id, parent_id=parent.id, dispatched=True, status="", status_description="",
        dispatch_idempotency_token=idempotency_token, priority=priority, meta={**(parent.meta or {}), **meta} or None,
        payload=payload or None, stable=False, version=0, create_index=0, modify_index=0, job_modify_index=0,
    )
    ev = None
    if child.periodic is None:
        ev = Evaluation(id=generate_uuid(), namespace=child.namespace, priority=priority, type=child.type,
                        triggered_by=TRIGGER_JOB_REGISTER, job_id=child.id, status=EVAL_STATUS_PENDING,
                        create_time=now, modify_time=now)
    index = server.state.apply(JobRegister(job=child, eval=ev, submit_time=now))
    return DispatchResult(dispatched_job_id=child.id, eval_id=ev.id if ev else "",
                          eval_create_index=index if ev else 0, job_create_index=index, index=index)
