"""Fill the unset fields of partially written blocks, as Nomad's `api` package does.

In Nomad, a jobspec decodes into pointer fields, so "not written" differs from "zero";
`restart { attempts = 5 }` keeps the job type's default delay and interval. Here a job
in its JSON (API) dict form still has that distinction (a missing key), so these rules
run on the dict, before it becomes a `Job`. Job-level `update`, `reschedule` and
`migrate` blocks are merged into each group (group values win). Everything that is
missing as a whole is left to `yurt.structs.defaults.canonicalize`.
"""

from __future__ import annotations

import copy
from typing import Any

from yurt.structs.base import HOUR, MINUTE, SECOND

DEFAULT_UPDATE = {
    "Stagger": 30 * SECOND, "MaxParallel": 1, "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE,
    "ProgressDeadline": 10 * MINUTE, "AutoRevert": False, "AutoPromote": False, "Canary": 0,
}
DEFAULT_MIGRATE = {"MaxParallel": 1, "HealthCheck": "checks",
                   "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE}
_RESTART = {
    "service": {"Attempts": 2, "Interval": 30 * MINUTE, "Delay": 15 * SECOND, "Mode": "fail",
                "RenderTemplates": False},
    "batch": {"Attempts": 3, "Interval": 24 * HOUR, "Delay": 15 * SECOND, "Mode": "fail",
              "RenderTemplates": False},
}
_RESCHEDULE = {
    "service": {"Attempts": 0, "Interval": 0, "Delay": 30 * SECOND, "DelayFunction": "exponential",
                "MaxDelay": HOUR, "Unlimited": True},
    "batch": {"Attempts": 1, "Interval": 24 * HOUR, "Delay": 5 * SECOND, "DelayFunction": "constant",
              "MaxDelay": 0, "Unlimited": False},
    "none": {"Attempts": 0, "Interval": 0, "Delay": 0, "DelayFunction": "", "MaxDelay": 0,
             "Unlimited": False},
}
DEFAULT_TEMPLATE = {"ChangeMode": "restart", "Perms": "0644", "Splay": 5 * SECOND,
                    "ErrMissingKey": False}
DEFAULT_CHANGE_SCRIPT = {"Command": "", "Args": [], "Timeout": 5 * SECOND, "FailOnError": False,
                         "RunOnFirstRender": False}
DEFAULT_VAULT = {"Env": True, "DisableFile": False, "ChangeMode": "restart"}
DEFAULT_DISCONNECT = {"Replace": True, "Reconcile": "best_score"}


def restart_defaults(job_type: str) -> dict[str, Any]:
    return dict(_RESTART["service" if job_type in ("service", "system") else "batch"])


def reschedule_defaults(job_type: str) -> dict[str, Any]:
    return dict(_RESCHEDULE.get(job_type, _RESCHEDULE["none"]))


def _merged(defaults: dict, *layers: dict | None) -> dict:
    out = dict(defaults)
    for layer in layers:
        out.update(layer or {})
    return out


def without_nulls(value: Any, key: str = "") -> Any:
    """A copy without `null` fields: in Nomad's API JSON, null means "not set"."""
    if key == "Config":  # driver config is free-form: keep it as written
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return {k: without_nulls(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def fill_partial_blocks(job: dict[str, Any]) -> dict[str, Any]:
    """A copy of the job dict with partially written blocks completed."""
    job = without_nulls(job)
    job_type = job.get("Type") or "service"
    if job.get("ID") and not job.get("Name"):
        job["Name"] = job["ID"]
    job_update = job.get("Update")
    if isinstance(job_update, dict):
        job["Update"] = _merged(DEFAULT_UPDATE, job_update)
    job_reschedule, job_migrate = job.pop("Reschedule", None), job.pop("Migrate", None)
    for group in job.get("TaskGroups") or ():
        if not isinstance(group, dict):
            continue
        _fill_group(group, job_type, job_update, job_reschedule, job_migrate)
    return job


def _fill_group(group: dict, job_type: str, job_update, job_reschedule, job_migrate) -> None:
    scaling = group.get("Scaling")
    if isinstance(scaling, dict):  # an unset count starts at the scaling minimum
        if "Count" not in group and scaling.get("Min") is not None:
            group["Count"] = scaling["Min"]
        scaling.setdefault("Enabled", True)
        scaling.setdefault("Min", group.get("Count", 1))
        scaling.setdefault("Type", "horizontal")
    if group.get("Update") is not None:
        group["Update"] = _merged(DEFAULT_UPDATE, job_update, group["Update"])
    if job_reschedule is not None or group.get("ReschedulePolicy") is not None:
        group["ReschedulePolicy"] = _merged(reschedule_defaults(job_type), job_reschedule,
                                            group.get("ReschedulePolicy"))
    if job_migrate is not None or group.get("Migrate") is not None:
        group["Migrate"] = _merged(DEFAULT_MIGRATE, job_migrate, group.get("Migrate"))
    if group.get("Disconnect") is not None:
        group["Disconnect"] = _merged(DEFAULT_DISCONNECT, group["Disconnect"])
    group_restart = None
    if group.get("RestartPolicy") is not None:
        group_restart = group["RestartPolicy"] = _merged(restart_defaults(job_type), group["RestartPolicy"])
    for task in group.get("Tasks") or ():
        if isinstance(task, dict):
            _fill_task(task, job_type, group_restart)


def _fill_task(task: dict, job_type: str, group_restart: dict | None) -> None:
    if task.get("RestartPolicy") is not None:
        task["RestartPolicy"] = _merged(group_restart or restart_defaults(job_type), task["RestartPolicy"])
    for template in task.get("Templates") or ():
        for key, value in DEFAULT_TEMPLATE.items():
            template.setdefault(key, value)
        if isinstance(template.get("ChangeScript"), dict):
            template["ChangeScript"] = _merged(DEFAULT_CHANGE_SCRIPT, template["ChangeScript"])
    if isinstance(task.get("Vault"), dict):
        task["Vault"] = _merged(DEFAULT_VAULT, task["Vault"])
    resources = task.get("Resources")
    if isinstance(resources, dict):
        if "CPU" not in resources and "Cores" not in resources:
            resources["CPU"] = 100
        resources.setdefault("MemoryMB", 300)
