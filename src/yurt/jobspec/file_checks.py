"""Checks of Nomad's `Job.Validate` that can point at a line of the job file.

They run on the decoded job dict (API names) right after decoding, using the positions
the decoder recorded, so that `yurt job validate web.nomad.hcl` says where a problem
is. The remaining checks (which need Nomad's defaults filled in) run later in
`validate.validate` on the canonicalized job.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from yurt.structs.job import JOB_TYPES, Affinity, Constraint, Spread

from .diagnostics import DiagnosticCollector, Position, did_you_mean
from .placement_checks import check_affinity, check_constraint, check_spread, cron_error

MIN_PRIORITY, MAX_PRIORITY = 1, 100
_BATCH_TYPES = ("batch", "sysbatch")


class _Checker:
    def __init__(self, positions: dict, diags: DiagnosticCollector):
        self.positions, self.diags = positions, diags

    def where(self, block: dict, key: str | None = None) -> Position | None:
        if key is not None and (id(block), key) in self.positions:
            return self.positions[(id(block), key)]
        return self.positions.get(id(block))

    def add(self, block: dict, key: str | None, summary: str, detail: str) -> None:
        self.diags.add(self.where(block, key), summary, detail)


def check_job_file(job: dict[str, Any], positions: dict, diags: DiagnosticCollector) -> None:
    checker = _Checker(positions, diags)
    job_type = job.get("Type", "service")
    _job_fields(checker, job, job_type)
    _placement(checker, job, "job", job_type)
    _periodic_and_parameterized(checker, job, job_type)
    _unique_names(checker, job.get("TaskGroups") or [], "group")
    for group in job.get("TaskGroups") or []:
        _group(checker, job, group, job_type)


def _job_fields(checker: _Checker, job: dict, job_type: str) -> None:
    priority = job.get("Priority")
    # 0 means "use the server's default" (Nomad's register endpoint fills it in)
    if priority and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        checker.add(job, "Priority", "Invalid priority",
                    f"job priority must be between [{MIN_PRIORITY}, {MAX_PRIORITY}]; got {priority}.")
    if job_type not in JOB_TYPES:
        checker.add(job, "Type", "Invalid job type",
                    f'"{job_type}" is not a job type; use one of service, batch, system, sysbatch.'
                    + did_you_mean(job_type, JOB_TYPES))


def _periodic_and_parameterized(checker: _Checker, job: dict, job_type: str) -> None:
    periodic = job.get("Periodic")
    if periodic is not None:
        if job_type not in _BATCH_TYPES and periodic.get("Enabled", True):
            checker.add(periodic, None, "Invalid periodic block",
                        f'Periodic can only be used with "batch" or "sysbatch" scheduler, not "{job_type}".')
        specs = [("Spec", periodic["Spec"])] if periodic.get("Spec") else []
        specs += [("Specs", s) for s in periodic.get("Specs") or []]
        for key, spec in specs:
            if (err := cron_error(spec)) is not None:
                checker.add(periodic, key, "Invalid cron spec", err + ".")
    parameterized = job.get("ParameterizedJob")
    if parameterized is not None:
        if job_type not in _BATCH_TYPES:
            checker.add(parameterized, None, "Invalid parameterized block",
                        f'Parameterized job can only be used with "batch" or "sysbatch" scheduler, not "{job_type}".')
        payload = parameterized.get("Payload", "optional")
        if payload not in ("optional", "required", "forbidden"):
            checker.add(parameterized, "Payload", "Invalid payload",
                        f'Unknown payload requirement "{payload}"; use optional, required or forbidden.')


def _placement(checker: _Checker, block: dict, level: str, job_type: str) -> None:
    for constraint in block.get("Constraints") or []:
        if "_invalid" in constraint:
            continue
        for err in check_constraint(_convert(constraint, Constraint)):
            checker.add(constraint, None, "Invalid constraint", _sentence(err))
        if level == "task" and constraint.get("Operand") in ("distinct_hosts", "distinct_property"):
            checker.add(constraint, None, "Invalid constraint",
                        f'The "{constraint["Operand"]}" operator is not allowed at task level.')
    for affinity in block.get("Affinities") or []:
        if job_type == "system":
            checker.add(affinity, None, "Invalid affinity", "System jobs may not have an affinity block.")
            continue
        for err in check_affinity(_convert(affinity, Affinity, {"Weight": 50, "Operand": "="})):
            checker.add(affinity, None, "Invalid affinity", _sentence(err))
    for spread in block.get("Spreads") or []:
        if job_type == "system":
            checker.add(spread, None, "Invalid spread", "System jobs may not have a spread block.")
            continue
        for err in check_spread(_convert(spread, Spread, {"Weight": 50})):
            checker.add(spread, None, "Invalid spread", _sentence(err))


def _convert(data: dict, kind: type, defaults: dict | None = None) -> Any:
    merged = {"Operand": "="} if kind is Constraint else {}
    merged.update(defaults or {})
    merged.update(data)
    return msgspec.convert(merged, kind)


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def _unique_names(checker: _Checker, blocks: list[dict], kind: str) -> None:
    seen: dict[str, dict] = {}
    for block in blocks:
        name = block.get("Name", "")
        if name in seen:
            first = checker.where(seen[name])
            at = f" at {first.describe(checker.diags.filename)}" if first else ""
            checker.add(block, None, f"Duplicate {kind}",
                        f'A {kind} named "{name}" was already defined{at}; {kind} names must be unique.')
        else:
            seen[name] = block


def _group(checker: _Checker, job: dict, group: dict, job_type: str) -> None:
    count = group.get("Count")
    if count is not None and count < 0:
        checker.add(group, "Count", "Invalid count", f"Task group count can't be negative: {count}.")
    if job_type == "system" and count is not None and count > 1:
        checker.add(group, "Count", "Invalid count",
                    f"Count cannot exceed 1 with system scheduler; got {count}.")
    _placement(checker, group, "group", job_type)
    tasks = group.get("Tasks") or []
    gateway = any((svc.get("Connect") or {}).get("Gateway") for svc in group.get("Services") or [])
    if not tasks and not gateway:  # Nomad injects the task of a Connect gateway
        checker.add(group, None, "Missing tasks", f'Group "{group.get("Name", "")}" has no task block.')
    _unique_names(checker, tasks, "task")
    labels = _port_labels(group)
    has_canary = _canary_count(job, group) > 0
    for service in group.get("Services") or []:
        _service(checker, service, labels, has_canary)
    for task in tasks:
        _task(checker, task, labels, has_canary, job_type)


def _port_labels(group: dict) -> set[str]:
    networks = list(group.get("Networks") or [])
    for task in group.get("Tasks") or []:
        networks += (task.get("Resources") or {}).get("Networks") or []
    return {port.get("Label", "") for network in networks
            for port in (network.get("DynamicPorts") or []) + (network.get("ReservedPorts") or [])}


def _canary_count(job: dict, group: dict) -> int:
    update = group.get("Update") or job.get("Update") or {}
    return update.get("Canary", 0) or 0


_NUMERIC = re.compile(r"^\d+$")


def _check_port(checker: _Checker, block: dict, key: str, labels: set[str], owner: str) -> None:
    label = block.get(key)
    if not label or _NUMERIC.match(label) or label.startswith("${"):
        return
    if label not in labels:
        known = ", ".join(sorted(labels)) or "none"
        checker.add(block, key, "Undefined port label",
                    f'{owner} uses port "{label}", which no network block defines (defined: {known}).'
                    + did_you_mean(label, labels))


def _service(checker: _Checker, service: dict, labels: set[str], has_canary: bool) -> None:
    name = service.get("Name", "")
    _check_port(checker, service, "PortLabel", labels, f'Service "{name}"')
    for check in service.get("Checks") or []:
        _check_port(checker, check, "PortLabel", labels, f'Check "{check.get("Name", "")}" of service "{name}"')
    for key in ("CanaryTags", "CanaryMeta"):
        if service.get(key) and not has_canary:
            hcl = "canary_tags" if key == "CanaryTags" else "canary_meta"
            checker.add(service, key, "Canary without an update block",
                        f'Service "{name}" sets {hcl}, but its group has no update block with canary > 0, '
                        "so there are never canaries to tag.")


def _task(checker: _Checker, task: dict, labels: set[str], has_canary: bool, job_type: str) -> None:
    name = task.get("Name", "")
    if not task.get("Driver"):
        checker.add(task, None, "Missing task driver",
                    f'Task "{name}" has no "driver" argument; every task needs one (e.g. driver = "docker").')
    _placement(checker, task, "task", job_type)
    for service in task.get("Services") or []:
        _service(checker, service, labels, has_canary)
    config = task.get("Config") or {}
    ports = config.get("ports")
    if isinstance(ports, list):
        for label in ports:
            if isinstance(label, str) and label not in labels and not label.startswith("${"):
                checker.add(config, "ports", "Undefined port label",
                            f'The driver config of task "{name}" uses port "{label}", which no network '
                            "block defines." + did_you_mean(label, labels))
