"""Nomad's defaults for a registered job (`canonicalize`).

Follows `nomad/structs` `Job.Canonicalize` (a missing block gets the default for the
job type) plus the `api` package's whole-job defaults that the server applies to jobs
that arrive as JSON (name = id, datacenters `["*"]`, a default `update` for service and
system jobs, task resources cpu 100 / memory 300, ...). Zero values that are invalid
in Nomad (priority 0, an empty region) are treated as unset. Partially written blocks
are completed earlier, by the job parser (`yurt.jobspec.api_defaults`).

`canonicalize` never mutates its input and is idempotent.
"""

from __future__ import annotations

import copy

from .base import HOUR, MINUTE, SECOND, deep_copy
from .job import (
    JOB_TYPE_BATCH, JOB_TYPE_SERVICE, JOB_TYPE_SYSTEM, EphemeralDisk, Job,
    LogConfig, MigrateStrategy, Resources, ReschedulePolicy, RestartPolicy, Task, TaskGroup,
    UpdateStrategy,
)

DEFAULT_NAMESPACE = "default"
DEFAULT_REGION = "global"
DEFAULT_NODE_POOL = "default"
DEFAULT_PRIORITY = 50
DEFAULT_KILL_TIMEOUT = 5 * SECOND
DEFAULT_CPU = 100
DEFAULT_MEMORY_MB = 300


def default_restart_policy(job_type: str) -> RestartPolicy:
    if job_type in (JOB_TYPE_SERVICE, JOB_TYPE_SYSTEM):
        return RestartPolicy(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail")
    return RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail")


def default_reschedule_policy(job_type: str) -> ReschedulePolicy | None:
    """Service: unlimited, exponential from 30s to 1h; batch: once in 24h; system: never."""
    if job_type == JOB_TYPE_SERVICE:
        return ReschedulePolicy(delay=30 * SECOND, delay_function="exponential",
                                max_delay=HOUR, unlimited=True)
    if job_type == JOB_TYPE_BATCH:
        return ReschedulePolicy(attempts=1, interval=24 * HOUR, delay=5 * SECOND,
                                delay_function="constant")
    return None


def default_update_strategy() -> UpdateStrategy:
    return UpdateStrategy(stagger=30 * SECOND, max_parallel=1, health_check="checks",
                          min_healthy_time=10 * SECOND, healthy_deadline=5 * MINUTE,
                          progress_deadline=10 * MINUTE)


def default_migrate_strategy() -> MigrateStrategy:
    return MigrateStrategy(max_parallel=1, health_check="checks",
                           min_healthy_time=10 * SECOND, healthy_deadline=5 * MINUTE)


def default_resources() -> Resources:
    return Resources(cpu=DEFAULT_CPU, memory_mb=DEFAULT_MEMORY_MB)


def _update_is_empty(update: UpdateStrategy) -> bool:
    return update == UpdateStrategy()


def canonicalize(job: Job) -> Job:
    """A copy of `job` with Nomad's defaults filled in."""
    job = deep_copy(job)
    job.namespace = job.namespace or DEFAULT_NAMESPACE
    job.region = job.region or DEFAULT_REGION
    job.type = job.type or JOB_TYPE_SERVICE
    job.name = job.name or job.id
    job.node_pool = job.node_pool or DEFAULT_NODE_POOL
    if job.priority == 0:
        job.priority = DEFAULT_PRIORITY
    if not job.datacenters:
        job.datacenters = ["*"]
    job.meta = job.meta or None
    job.constraints = job.constraints or None
    job.affinities = job.affinities or None
    job.spreads = job.spreads or None
    if job.update is None and job.type in (JOB_TYPE_SERVICE, JOB_TYPE_SYSTEM):
        job.update = default_update_strategy()
    if job.periodic is not None:
        job.periodic.spec_type = job.periodic.spec_type or "cron"
        job.periodic.time_zone = job.periodic.time_zone or "UTC"
    if job.parameterized_job is not None:
        job.parameterized_job.payload = job.parameterized_job.payload or "optional"
    for group in job.task_groups or ():
        _canonicalize_group(group, job)
    return job


def _canonicalize_group(group: TaskGroup, job: Job) -> None:
    group.meta = group.meta or None
    group.constraints = group.constraints or None
    group.affinities = group.affinities or None
    group.spreads = group.spreads or None
    if job.type == JOB_TYPE_SYSTEM and group.count == 0:
        group.count = 1
    if group.update is None and job.update is not None and not _update_is_empty(job.update):
        group.update = copy.deepcopy(job.update)
    if group.restart_policy is None:
        group.restart_policy = default_restart_policy(job.type)
    elif not group.restart_policy.mode:
        group.restart_policy.mode = "fail"
    if group.reschedule_policy is None:
        group.reschedule_policy = default_reschedule_policy(job.type)
    if group.migrate is None and job.type == JOB_TYPE_SERVICE:
        group.migrate = default_migrate_strategy()
    if group.ephemeral_disk is None:
        group.ephemeral_disk = EphemeralDisk()
    if group.disconnect is not None and group.disconnect.replace is None:
        group.disconnect.replace = True
    if group.disconnect is not None and not group.disconnect.reconcile:
        group.disconnect.reconcile = "best_score"
    for network in group.networks or ():
        _canonicalize_ports(network)
    for task in group.tasks or ():
        _canonicalize_task(task, group)


def _canonicalize_ports(network) -> None:
    network.reserved_ports = network.reserved_ports or None
    network.dynamic_ports = network.dynamic_ports or None
    for port in (network.reserved_ports or []) + (network.dynamic_ports or []):
        port.host_network = port.host_network or "default"


def _canonicalize_task(task: Task, group: TaskGroup) -> None:
    task.meta = task.meta or None
    task.env = task.env or None
    task.config = task.config or None
    task.constraints = task.constraints or None
    task.affinities = task.affinities or None
    task.volume_mounts = task.volume_mounts or None
    if task.resources is None:
        task.resources = default_resources()
    else:
        if task.resources.cpu == 0 and task.resources.cores == 0:
            task.resources.cpu = DEFAULT_CPU
        if task.resources.memory_mb == 0:
            task.resources.memory_mb = DEFAULT_MEMORY_MB
        task.resources.networks = task.resources.networks or None
        task.resources.devices = task.resources.devices or None
        for network in task.resources.networks or ():
            _canonicalize_ports(network)
    if task.restart_policy is None:
        task.restart_policy = copy.deepcopy(group.restart_policy)
    if task.kill_timeout == 0:
        task.kill_timeout = DEFAULT_KILL_TIMEOUT
    if task.log_config is None:
        task.log_config = LogConfig()
    if task.lifecycle is not None and not task.lifecycle.hook and not task.lifecycle.sidecar:
        task.lifecycle = None
