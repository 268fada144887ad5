"""More of Nomad's `Job.Validate`: services and checks, templates, artifacts, volumes,
reschedule policy, ephemeral disk, scaling and dispatch payload. Each function returns
the problems as sentences naming the field and the value."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from yurt.structs.base import SECOND
from yurt.structs.durations import format_duration
from yurt.structs.job import EphemeralDisk, ReschedulePolicy, Task, TaskGroup

_SERVICE_NAME = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
_CHECK_TYPES = ("http", "tcp", "grpc", "script")
_CHECK_STATES = ("", "passing", "warning", "critical")
_ADDRESS_MODES = ("", "auto", "host", "driver", "alloc", "alloc_ipv6")
_ON_UPDATE = ("", "require_healthy", "ignore_warnings", "ignore")
_CHANGE_MODES = ("restart", "signal", "noop", "script")
_DELAY_FUNCTIONS = ("constant", "exponential", "fibonacci")
MIN_CHECK_INTERVAL = SECOND
MIN_CHECK_TIMEOUT = SECOND
MIN_RESCHEDULE_DELAY = 5 * SECOND


def service_problems(service: dict[str, Any], where: str) -> list[str]:
    errors = []
    name = service.get("Name", "")
    if name and "${" not in name and not _SERVICE_NAME.match(name):
        errors.append(f"{where}: Service name must be valid per RFC 1123 and can contain only "
                      f"alphanumeric characters or dashes and must be no longer than 63 characters: {name!r}")
    provider = service.get("Provider", "") or "consul"
    if provider not in ("consul", "nomad"):
        errors.append(f'{where}: Service provider must be "consul", or "nomad"; not "{provider}"')
    if service.get("AddressMode", "") not in _ADDRESS_MODES:
        errors.append(f'{where}: Service address_mode must be "auto", "host", or "driver"; '
                      f'not "{service["AddressMode"]}"')
    if service.get("OnUpdate", "") not in _ON_UPDATE:
        errors.append(f'{where}: Service on_update must be "require_healthy", "ignore_warnings", or '
                      f'"ignore"; not "{service["OnUpdate"]}"')
    for i, check in enumerate(service.get("Checks") or (), 1):
        label = check.get("Name") or f"check {i}"
        errors += [f"{where}: Check {label} invalid: {e}" for e in check_problems(check, provider)]
    return errors


def check_problems(check: dict[str, Any], provider: str) -> list[str]:
    kind = check.get("Type", "")
    if kind not in _CHECK_TYPES:
        return [f'invalid type "{kind}", must be one of http, tcp, grpc, script']
    errors = []
    if provider == "nomad" and kind not in ("http", "tcp"):
        errors.append(f'check type "{kind}" is not supported by the nomad service provider')
    interval, timeout = check.get("Interval", 0) or 0, check.get("Timeout", 0) or 0
    if interval == 0:
        errors.append("missing required value interval. Interval cannot be less than "
                      f"{format_duration(MIN_CHECK_INTERVAL)}")
    elif interval < MIN_CHECK_INTERVAL:
        errors.append(f"interval ({format_duration(interval)}) cannot be lower than "
                      f"{format_duration(MIN_CHECK_INTERVAL)}")
    if kind != "script" or timeout:
        if timeout == 0 and kind != "script":
            errors.append("missing required value timeout. Timeout cannot be less than "
                          f"{format_duration(MIN_CHECK_TIMEOUT)}")
        elif 0 < timeout < MIN_CHECK_TIMEOUT:
            errors.append(f"timeout ({format_duration(timeout)}) is lower than required minimum timeout "
                          f"{format_duration(MIN_CHECK_TIMEOUT)}")
    if kind == "http" and not check.get("Path"):
        errors.append("http type must have http path")
    if kind == "script" and not check.get("Command"):
        errors.append("script type must have a valid script path")
    if check.get("InitialStatus", "") not in _CHECK_STATES:
        errors.append(f'invalid initial check state "{check["InitialStatus"]}", must be one of '
                      "passing, warning, critical")
    return errors


def _escapes(path: str) -> bool:
    if not path or "${" in path:
        return False
    joined = posixpath.normpath(posixpath.join("/alloc/task", path))
    return not joined.startswith("/alloc/")


def template_problems(template: dict[str, Any], index: int) -> list[str]:
    where = f"Template {index} validation failed"
    errors = []
    if not template.get("SourcePath") and not template.get("EmbeddedTmpl"):
        errors.append(f"{where}: Must specify a source path or have an embedded template")
    if not template.get("DestPath"):
        errors.append(f"{where}: Must specify a destination for the template")
    elif _escapes(template["DestPath"]):
        errors.append(f"{where}: destination escapes allocation directory")
    mode = template.get("ChangeMode", "restart") or "restart"
    if mode not in _CHANGE_MODES:
        errors.append(f"{where}: Invalid change mode. Must be one of the following: noop, signal, script, restart")
    if mode == "signal" and not template.get("ChangeSignal"):
        errors.append(f"{where}: Must specify signal value when change mode is signal")
    if mode == "script" and not (template.get("ChangeScript") or {}).get("Command"):
        errors.append(f"{where}: must specify change script configuration value when change mode is script")
    if template.get("Envvars") and mode == "signal":
        errors.append(f"{where}: cannot use signals with env var templates")
    if (template.get("Splay") or 0) < 0:
        errors.append(f"{where}: Must specify positive splay value")
    return errors


def artifact_problems(artifact: dict[str, Any], index: int) -> list[str]:
    where = f"Artifact {index} validation failed"
    errors = []
    if not artifact.get("GetterSource"):
        errors.append(f"{where}: source must be specified")
    if _escapes(artifact.get("RelativeDest", "")):
        errors.append(f"{where}: destination escapes allocation directory")
    mode = artifact.get("GetterMode", "") or "any"
    if mode not in ("any", "file", "dir"):
        errors.append(f'{where}: invalid artifact mode "{mode}"; must be one of: any, file, dir')
    return errors


def task_extra_problems(task: Task, group: TaskGroup) -> list[str]:
    errors = []
    destinations: dict[str, int] = {}
    for i, template in enumerate(task.templates or (), 1):
        errors += template_problems(template, i)
        dest = template.get("DestPath", "")
        if dest and dest in destinations:
            errors.append(f"Template {i} has same destination as {destinations[dest]}")
        destinations.setdefault(dest, i)
    for i, artifact in enumerate(task.artifacts or (), 1):
        errors += artifact_problems(artifact, i)
    volumes = group.volumes or {}
    for i, mount in enumerate(task.volume_mounts or ()):
        name = mount.get("Volume", "")
        if name not in volumes:
            errors.append(f"Volume Mount ({i}) references undefined volume {name}")
        if not mount.get("Destination"):
            errors.append(f"Volume Mount ({i}) has an empty destination")
    for i, service in enumerate(task.services or (), 1):
        errors += service_problems(service, f"Service {i}")
    errors += _undefined_service_ports(task, group)
    if task.dispatch_payload is not None and _escapes(task.dispatch_payload.file):
        errors.append(f'dispatch_payload file "{task.dispatch_payload.file}" escapes allocation directory')
    return errors


def _undefined_service_ports(task: Task, group: TaskGroup) -> list[str]:
    """Task services must name a port of the group's first network or the task's own."""
    networks = list(group.networks or ())[:1] + list((task.resources.networks if task.resources else None) or ())
    labels = {p.label for n in networks for p in (n.reserved_ports or []) + (n.dynamic_ports or [])}
    wanted: dict[str, set[str]] = {}
    for service in task.services or ():
        port = service.get("PortLabel", "")
        if port and not port.isdigit() and "${" not in port and not service.get("Connect"):
            wanted.setdefault(port, set()).add(service.get("Name", ""))
    return [f'port label "{port}" referenced by services {", ".join(sorted(names))} does not exist'
            for port, names in sorted(wanted.items()) if port not in labels]


def reschedule_problems(policy: ReschedulePolicy) -> list[str]:
    if policy.attempts == 0 and not policy.unlimited:
        return []
    errors = []
    if policy.delay_function not in _DELAY_FUNCTIONS:
        errors.append(f'Invalid delay function "{policy.delay_function}", must be one of '
                      '["constant" "exponential" "fibonacci"]')
    if policy.delay < MIN_RESCHEDULE_DELAY:
        errors.append(f"Delay cannot be less than {format_duration(MIN_RESCHEDULE_DELAY)} "
                      f"(got {format_duration(policy.delay)})")
    if policy.delay_function in ("exponential", "fibonacci") and policy.max_delay < policy.delay:
        errors.append(f"Max Delay cannot be less than Delay {format_duration(policy.delay)} "
                      f"(got {format_duration(policy.max_delay)})")
    if not policy.unlimited and policy.interval <= 0:
        errors.append("Interval must be a non zero value if Attempts > 0")
    return errors


def group_extra_problems(group: TaskGroup) -> list[str]:
    errors = []
    disk: EphemeralDisk | None = group.ephemeral_disk
    if disk is not None and disk.size_mb < 10:
        errors.append(f"minimum DiskMB value is 10; got {disk.size_mb}")
    if group.reschedule_policy is not None:
        errors += [f"Reschedule policy: {e}" for e in reschedule_problems(group.reschedule_policy)]
    scaling = group.scaling or {}
    if scaling:
        low, high = scaling.get("Min"), scaling.get("Max")
        if high is None:
            errors.append("Scaling policy invalid: maximum count must be specified")
        elif high < 0:
            errors.append(f"Scaling policy invalid: maximum count must not be less than zero; got {high}")
        elif low is not None and low > high:
            errors.append(f"Scaling policy invalid: minimum count must not be greater than maximum ({low} > {high})")
        else:
            if group.count > high:
                errors.append("Scaling policy invalid: task group count must not be greater than maximum "
                              "count in scaling policy")
            if low is not None and group.count < low:
                errors.append("Scaling policy invalid: task group count must not be less than minimum "
                              "count in scaling policy")
    for i, service in enumerate(group.services or (), 1):
        errors += service_problems(service, f"Service {i}")
    for name, volume in (group.volumes or {}).items():
        kind = (volume or {}).get("Type", "")
        if kind not in ("host", "csi"):
            errors.append(f'Volume "{name}" has an invalid type "{kind}"; must be host or csi')
        elif not (volume or {}).get("Source"):
            errors.append(f'Volume "{name}" has an empty source')
    return errors
