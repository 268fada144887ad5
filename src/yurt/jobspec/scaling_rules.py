"""Scaling blocks as Nomad's jobspec2 decodes them.

A task's `scaling "cpu"` / `scaling "mem"` block becomes a policy of type `vertical_cpu`
/ `vertical_mem` (other labels, duplicates and a contradicting `type` are errors). A
group's `scaling` block needs `max`, and a `type` other than `horizontal` is an error.
"""

from __future__ import annotations

from typing import Any

from .diagnostics import DiagnosticCollector

TASK_SCALING_TYPES = {"cpu": "vertical_cpu", "mem": "vertical_mem"}


def apply_scaling_rules(job: dict[str, Any], positions: dict, diags: DiagnosticCollector) -> None:
    for group in job.get("TaskGroups") or ():
        scaling = group.get("Scaling")
        if isinstance(scaling, dict):
            _group_scaling(scaling, positions, diags)
        for task in group.get("Tasks") or ():
            if task.get("ScalingPolicies"):
                task["ScalingPolicies"] = _task_policies(task["ScalingPolicies"], positions, diags)


def _group_scaling(scaling: dict, positions: dict, diags: DiagnosticCollector) -> None:
    if "Max" not in scaling:
        diags.add(positions.get(id(scaling)), "Missing required argument",
                  'The argument "max" is required, but no definition was found.')
    kind = scaling.get("Type")
    if kind is not None and kind != "horizontal":
        diags.add(positions.get((id(scaling), "Type")), "Invalid group scaling type",
                  f'task group scaling policy had invalid type: "{kind}"')


def _task_policies(policies: list[dict], positions: dict, diags: DiagnosticCollector) -> list[dict]:
    seen: dict[str, Any] = {}
    kept = []
    for policy in policies:
        label = str(policy.pop("_Label", "")).lower()
        where = positions.get(id(policy))
        if label not in TASK_SCALING_TYPES:
            diags.add(where, "Invalid scaling policy name", 'scaling policy name must be "cpu" or "mem"')
            continue
        if label in seen:
            first = seen[label]
            at = f" Another was defined at {first.describe(diags.filename)}." if first else ""
            diags.add(where, f'Duplicate scaling "{label}" block', f"Only one scaling {label} block is allowed.{at}")
            continue
        seen[label] = where
        wanted = TASK_SCALING_TYPES[label]
        if policy.get("Type", wanted) != wanted:
            diags.add(where, "Invalid scaling policy type",
                      f'Invalid policy type, expected "{wanted}" but found "{policy["Type"]}"')
            continue
        policy["Type"] = wanted
        kept.append(policy)
    return kept
