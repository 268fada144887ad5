"""`validate(job) -> list[str]`: the checks of Nomad's `Job.Validate` (plus the job
priority admission check), worded as Nomad words them. Run it on a canonicalized job.

Nomad nests group and task errors ("Task group cache validation failed: ..."); here each
problem is one string carrying that prefix.
"""

from __future__ import annotations

from yurt.structs.durations import format_duration
from yurt.structs.job import (
    JOB_TYPES,
    Affinity,
    Constraint,
    Job,
    Spread,
    Task,
    TaskGroup,
)

from .placement_checks import (
    check_affinity,
    check_constraint,
    check_periodic,
    check_restart_policy,
    check_spread,
    check_update_strategy,
)
from .task_checks import group_extra_problems, task_extra_problems

MIN_PRIORITY, MAX_PRIORITY = 1, 100
MAX_PORT = 65535


def validate(job: Job) -> list[str]:
    errors: list[str] = []
    _job_fields(job, errors)
    _job_placement(job, errors)
    _group_names(job, errors)
    for group in job.task_groups or ():
        errors.extend(f"Task group {group.name} validation failed: {e}"
                      for e in _group(group, job))
    if job.periodic is not None and job.periodic.enabled:
        if job.type not in ("batch", "sysbatch"):
            errors.append('Periodic can only be used with "batch" or "sysbatch" scheduler')
        errors.extend(check_periodic(job.periodic))
    if job.parameterized_job is not None and not job.dispatched:
        if job.type not in ("batch", "sysbatch"):
            errors.append('Parameterized job can only be used with "batch" or "sysbatch" scheduler')
        errors.extend(_parameterized(job))
    return errors


def _job_fields(job: Job, errors: list[str]) -> None:
    if not job.region:
        errors.append("Missing job region")
    if not job.id:
        errors.append("Missing job ID")
    elif " " in job.id:
        errors.append("Job ID contains a space")
    elif "\x00" in job.id:
        errors.append("Job ID contains a null character")
    if not job.name:
        errors.append("Missing job name")
    elif "\x00" in job.name:
        errors.append("Job Name contains a null character")
    if not job.namespace:
        errors.append("Job must be in a namespace")
    if not job.type:
        errors.append("Missing job type")
    elif job.type not in JOB_TYPES:
        errors.append(f'Invalid job type: "{job.type}"')
    if not job.priority or not MIN_PRIORITY <= job.priority <= MAX_PRIORITY:
        errors.append(f"job priority must be between [{MIN_PRIORITY}, {MAX_PRIORITY}]")
    if not job.datacenters:
        errors.append("Missing job datacenters")
    elif any(dc == "" for dc in job.datacenters):
        errors.append("Job datacenter must be non-empty string")
    if not job.task_groups:
        errors.append("Missing job task groups")
    description = (job.ui or {}).get("Description", "")
    if isinstance(description, str) and len(description) > 1000:
        errors.append(f"UI description must be under 1000 characters, currently {len(description)}")


def _job_placement(job: Job, errors: list[str]) -> None:
    _constraints(job.constraints, errors)
    if job.type == "system":
        if job.affinities:
            errors.append("System jobs may not have an affinity block")
        if job.spreads:
            errors.append("System jobs may not have a spread block")
    else:
        _affinities(job.affinities, errors)
        _spreads(job.spreads, errors)


def _constraints(constraints: list[Constraint] | None, errors: list[str]) -> None:
    for idx, constraint in enumerate(constraints or (), 1):
        errors.extend(f"Constraint {idx} validation failed: {e}" for e in check_constraint(constraint))


def _affinities(affinities: list[Affinity] | None, errors: list[str]) -> None:
    for idx, affinity in enumerate(affinities or (), 1):
        errors.extend(f"Affinity {idx} validation failed: {e}" for e in check_affinity(affinity))


def _spreads(spreads: list[Spread] | None, errors: list[str]) -> None:
    for idx, spread in enumerate(spreads or (), 1):
        errors.extend(f"Spread {idx} validation failed: {e}" for e in check_spread(spread))


def _group_names(job: Job, errors: list[str]) -> None:
    seen: dict[str, int] = {}
    for idx, group in enumerate(job.task_groups or (), 1):
        if not group.name:
            errors.append(f"Job task group {idx} missing name")
        elif group.name in seen:
            errors.append(f"Job task group {idx} redefines '{group.name}' from group {seen[group.name]}")
        else:
            seen[group.name] = idx
        if group.shutdown_delay is not None and group.shutdown_delay < 0:
            errors.append("ShutdownDelay must be a positive value")
        if job.type == "system" and group.count > 1:
            errors.append(f"Job task group {group.name} has count {group.count}. "
                          "Count cannot exceed 1 with system scheduler")


def _group(group: TaskGroup, job: Job) -> list[str]:
    errors: list[str] = []
    if not group.name:
        errors.append("Missing task group name")
    elif "\x00" in group.name:
        errors.append("Task group name contains null character")
    if group.count < 0:
        errors.append("Task group count can't be negative")
    gateway = any((svc.get("Connect") or {}).get("Gateway") for svc in group.services or ())
    if not group.tasks and not gateway:  # Nomad injects a Connect gateway's task on register
        errors.append("Missing tasks for task group")
    _constraints(group.constraints, errors)
    if job.type == "system":
        if group.affinities:
            errors.append("System jobs may not have an affinity block")
        if group.spreads:
            errors.append("System jobs may not have a spread block")
    else:
        _affinities(group.affinities, errors)
        _spreads(group.spreads, errors)
    _group_policies(group, job, errors)
    errors.extend(group_extra_problems(group))
    errors.extend(f"Task group network validation failed: {e}" for e in _networks(group))
    _tasks(group, job, errors)
    return errors


def _group_policies(group: TaskGroup, job: Job, errors: list[str]) -> None:
    if group.restart_policy is None:
        errors.append(f"Task Group {group.name} should have a restart policy")
    else:
        errors.extend(check_restart_policy(group.restart_policy, group.name))
    if job.type in ("system", "sysbatch"):
        if group.reschedule_policy is not None:
            errors.append("System or sysbatch jobs should not have a reschedule policy")
    elif group.reschedule_policy is None:
        errors.append(f"Task Group {group.name} should have a reschedule policy")
    if group.ephemeral_disk is None:
        errors.append(f"Task Group {group.name} should have an ephemeral disk object")
    if group.update is not None:
        if job.type in ("batch", "sysbatch"):
            errors.append(f'Job type "{job.type}" does not allow update block')
        elif group.update.max_parallel > 0:
            errors.extend(check_update_strategy(group.update))
    if group.migrate is not None and job.type != "service":
        errors.append(f'Job type "{job.type}" does not allow migrate block')


def _networks(group: TaskGroup) -> list[str]:
    errors: list[str] = []
    labels: dict[str, str] = {}
    static: dict[int, str] = {}
    networks = list(group.networks or ())
    owners = ["taskgroup network"] * len(networks)
    for task in group.tasks or ():
        task_networks = (task.resources.networks if task.resources else None) or ()
        networks += task_networks
        owners += [task.name] * len(task_networks)
    for owner, network in zip(owners, networks):
        for port in (network.reserved_ports or []) + (network.dynamic_ports or []):
            if port.label in labels:
                errors.append(f"Port label {port.label} already in use by {labels[port.label]}")
            else:
                labels[port.label] = owner
            if port.value > MAX_PORT:
                errors.append(f"Port {port.label} ({port.value}) cannot be greater than {MAX_PORT}")
            if port.to < -1:
                errors.append(f'Port "{port.label}" cannot be mapped to negative value {port.to}')
            elif port.to > MAX_PORT:
                errors.append(f'Port "{port.label}" cannot be mapped to a port ({port.to}) greater than {MAX_PORT}')
        for port in network.reserved_ports or ():
            if port.value in static:
                errors.append(f"Static port {port.value} already reserved by {static[port.value]}")
            else:
                static[port.value] = f"{owner}:{port.label}"
    return errors


def _tasks(group: TaskGroup, job: Job, errors: list[str]) -> None:
    seen: dict[str, int] = {}
    leaders = 0
    for idx, task in enumerate(group.tasks or (), 1):
        if not task.name:
            errors.append(f"Task {idx} missing name")
        elif task.name in seen:
            errors.append(f"Task {idx} redefines '{task.name}' from task {seen[task.name]}")
        else:
            seen[task.name] = idx
        leaders += bool(task.leader)
    if leaders > 1:
        errors.append("Only one task may be marked as leader")
    tasks = group.tasks or ()
    if tasks and all(t.lifecycle is not None and t.lifecycle.hook and not t.lifecycle.sidecar
                     for t in tasks):
        errors.append(f"Task group {group.name} must have at least one main task")
    for task in tasks:
        errors.extend(f"Task {task.name} validation failed: {e}" for e in _task(task, group, job))


def _task(task: Task, group: TaskGroup, job: Job) -> list[str]:
    errors: list[str] = []
    if not task.name:
        errors.append("Missing task name")
    elif task.name == "alloc":
        errors.append('Task cannot be named "alloc"')
    elif "/" in task.name:
        errors.append("Task name cannot include slashes")
    elif "\x00" in task.name:
        errors.append("Task name cannot include null characters")
    if not task.driver:
        errors.append("Missing task driver")
    if task.kill_timeout < 0:
        errors.append("KillTimeout must be a positive value")
    elif group.update is not None and group.update.progress_deadline and \
            task.kill_timeout > group.update.progress_deadline:
        errors.append(f"KillTimout ({format_duration(task.kill_timeout)}) longer than the group's "
                      f"ProgressDeadline ({format_duration(group.update.progress_deadline)})")
    if task.shutdown_delay < 0:
        errors.append("ShutdownDelay must be a positive value")
    if task.resources is None:
        errors.append("Missing task resources")
    else:
        if task.resources.cores == 0 and task.resources.cpu < 1:
            errors.append(f"minimum CPU value is 1; got {task.resources.cpu}")
        if task.resources.memory_mb < 10:
            errors.append(f"minimum MemoryMB value is 10; got {task.resources.memory_mb}")
    if task.log_config is None:
        errors.append("Missing Log Config")
    for idx, constraint in enumerate(task.constraints or (), 1):
        errors.extend(f"Constraint {idx} validation failed: {e}" for e in check_constraint(constraint))
        if constraint.operand in ("distinct_hosts", "distinct_property"):
            errors.append(f"Constraint {idx} has disallowed Operand at task level: {constraint.operand}")
    if job.type == "system" and task.affinities:
        errors.append("System jobs may not have an affinity block")
    else:
        _affinities(task.affinities, errors)
    if task.lifecycle is not None and task.lifecycle.hook not in ("prestart", "poststart", "poststop"):
        errors.append(f"invalid hook: {task.lifecycle.hook}")
    errors.extend(task_extra_problems(task, group))
    return errors


def _parameterized(job: Job) -> list[str]:
    config = job.parameterized_job
    errors = []
    if config.payload not in ("optional", "required", "forbidden"):
        errors.append(f'Unknown payload requirement: "{config.payload}"')
    both = sorted(set(config.meta_required or ()) & set(config.meta_optional or ()))
    if both:
        errors.append("Required and optional meta keys should be disjoint. "
                      f"Following keys exist in both: [{' '.join(both)}]")
    return errors

