"""Job register, deregister and evaluate."""

from dataclasses import dataclass, field

from yurt.structs import (
    EVAL_STATUS_PENDING,
    TRIGGER_JOB_DEREGISTER,
    TRIGGER_JOB_REGISTER,
    Evaluation,
    Job,
    evolve,
    generate_uuid,
)

from .errors import EndpointError, multi_error

ENFORCE_PREFIX = "Enforcing job modify index"


@dataclass
class RegisterResult:
    eval_id: str = ""
    eval_create_index: int = 0
    job_modify_index: int = 0
    index: int = 0
    warnings: list[str] = field(default_factory=list)


def job_needs_eval(job: Job) -> bool:
    """Periodic and parameterized (template) jobs are not scheduled themselves."""
    if job.periodic is not None:
        return False
    return not (job.parameterized_job is not None and not job.dispatched)


def new_job_eval(job: Job, trigger: str, now_ns: int, priority: int = 0) -> Evaluation:
    return Evaluation(
        id=generate_uuid(),
        namespace=job.namespace,
        priority=priority or job.priority,
        type=job.type,
        triggered_by=trigger,
        job_id=job.id,
        job_modify_index=job.job_modify_index,
        status=EVAL_STATUS_PENDING,
        create_time=now_ns,
        modify_time=now_ns,
    )


def check_enforce_index(existing: Job | None, job_modify_index: int) -> None:
    if existing is not None:
        if job_modify_index == 0:
            raise EndpointError(409, f"{ENFORCE_PREFIX} 0: job already exists")
        if job_modify_index != existing.job_modify_index:
            raise EndpointError(
                409,
                f"{ENFORCE_PREFIX} {job_modify_index}: job exists with conflicting job modify index: "
                f"{existing.job_modify_index}",
            )
    elif job_modify_index != 0:
        raise EndpointError(409, f"{ENFORCE_PREFIX} {job_modify_index}: job does not exist")


def canonical_valid_job(job: Job) -> Job:
    """Nomad's defaults filled in, or a 400 listing every validation error."""
    from yurt.jobspec import validate
    from yurt.structs.defaults import canonicalize

    job = canonicalize(job)
    errors = validate(job)
    if errors:
        raise EndpointError(400, multi_error(errors))
    return job


def register_job(
    server,
    job: Job,
    enforce_index: bool = False,
    job_modify_index: int = 0,
    eval_priority: int = 0,
) -> RegisterResult:
    """Store the job and its `job-register` eval in one command (all or nothing)."""
    from yurt.state.commands import JobRegister

    if eval_priority and not 1 <= eval_priority <= 100:
        raise EndpointError(400, f"Invalid eval priority {eval_priority}: must be between 1 and 100")
    job = canonical_valid_job(job)
    snapshot = server.state.snapshot()
    if snapshot.scheduler_config().reject_job_registration:
        raise EndpointError(403, "job registration, dispatch, and scale are disabled by the scheduler configuration")
    existing = snapshot.job_by_id(job.namespace, job.id)
    if enforce_index:
        check_enforce_index(existing, job_modify_index)
    now = server.now_ns()
    ev = new_job_eval(job, TRIGGER_JOB_REGISTER, now, eval_priority) if job_needs_eval(job) else None
    index = server.state.apply(JobRegister(job=job, eval=ev, submit_time=now))
    stored = server.state.snapshot().job_by_id(job.namespace, job.id)
    return RegisterResult(
        eval_id=ev.id if ev else "",
        eval_create_index=index if ev else 0,
        job_modify_index=stored.job_modify_index if stored else index,
        index=index,
    )


def deregister_job(server, namespace: str, job_id: str, purge: bool = False, eval_priority: int = 0) -> RegisterResult:
    from yurt.state.commands import JobDeregister

    job = server.state.snapshot().job_by_id(namespace, job_id)
    if job is None:
        raise EndpointError(404, "job not found")
    now = server.now_ns()
    ev = new_job_eval(job, TRIGGER_JOB_DEREGISTER, now, eval_priority) if job_needs_eval(job) else None
    index = server.state.apply(
        JobDeregister(namespace=namespace, job_id=job_id, purge=purge, eval=ev, submit_time=now)
    )
    return RegisterResult(
        eval_id=ev.id if ev else "",
        eval_create_index=index if ev else 0,
        job_modify_index=index,
        index=index,
    )


def evaluate_job(server, namespace: str, job_id: str) -> RegisterResult:
    """A fresh `job-register` eval for an existing job (`nomad job eval`)."""
    from yurt.state.commands import EvalUpsert

    job = server.state.snapshot().job_by_id(namespace, job_id)
    if job is None:
        raise EndpointError(404, "job not found")
    if job.periodic is not None:
        raise EndpointError(400, "can't evaluate periodic job")
    if job.parameterized_job is not None and not job.dispatched:
        raise EndpointError(400, "can't evaluate parameterized job")
    ev = new_job_eval(job, TRIGGER_JOB_REGISTER, server.now_ns())
    index = server.state.apply(EvalUpsert(evals=[ev]))
    return RegisterResult(eval_id=ev.id, eval_create_index=index, job_modify_index=job.job_modify_index, index=index)


def _resubmittable(job: Job) -> Job:
    """A stored job made fit to be registered again (indexes are the state's to set)."""
    return evolve(job, create_index=0, modify_index=0, job_modify_index=0, status="", stable=False)


def revert_job(server, namespace: str, job_id: str, version: int,
               enforce_prior_version: int | None = None) -> RegisterResult:
    """Nomad's Job.Revert: register an old version again (a new version, not stable)."""
    current = server.state.snapshot().job_by_id(namespace, job_id)
    if current is None:
        raise EndpointError(404, f'job "{job_id}" not found')
    if version == current.version:
        raise EndpointError(400, "can't revert to current version")
    old = server.state.snapshot().job_version(namespace, job_id, version)
    if old is None:
        raise EndpointError(404, f'job "{job_id}" in namespace "{namespace}" at version {version} not found')
    if enforce_prior_version is not None and current.version != enforce_prior_version:
        raise EndpointError(
            400, f"Current job has version {current.version}; enforcing version {enforce_prior_version}")
    return register_job(server, _resubmittable(old))
