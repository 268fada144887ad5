"""`yurt job plan`: a scheduler dry-run of a job file (`-var`, `-var-file` as on run)."""

from __future__ import annotations

from yurt.structs import to_wire

from .command import Command
from .format import format_list, q
from .job_run import _job_flags, load_job
from .jobdiff import MARKERS, fields_and_objects

# Nomad's order and words for a group's desired changes.
_UPDATES = (("Place", "create"), ("Stop", "destroy"), ("Migrate", "migrate"),
            ("InPlaceUpdate", "in-place update"), ("DestructiveUpdate", "create/destroy update"),
            ("Canary", "canary"), ("Ignore", "ignore"))
_CHECK_INDEX_HELP = """When running the job with the check-index flag, the job will only be run if the
job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid."""


class JobPlanCommand(Command):
    name = "job plan"
    synopsis = "Dry-run a job update to determine its effects"
    help = """
Usage: yurt job plan [options] <path>
Alias: yurt plan

  Plan invokes a dry-run of the scheduler to determine the effects of submitting
  either a new or updated version of a job. The plan will not result in any
  changes to the cluster but gives insight into whether the job could be run
  successfully and how it would affect existing allocations.

  A job modify index is returned with the plan. This value can be used when
  submitting the job using "yurt job run -check-index", which will check that the
  job was not modified between the plan and run command before invoking the
  scheduler. If the job has been modified, the run command will fail.

  Plan will return one of the following exit codes:
    * 0: No allocations created or destroyed.
    * 1: Allocations created or destroyed.
    * 255: Error determining plan results.

{general}

Plan Options:

  -diff
    Determines whether the diff between the remote job and planned job is shown.
    Defaults to true.

  -hcl2-strict
    Whether an error should be produced from the HCL2 parser where a variable
    has been supplied which is not defined within the root variables. Defaults
    to true.

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.

  -verbose
    Increase diff verbosity.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        _job_flags(self)
        self.flags.bool("diff", True).bool("verbose").bool("policy-override")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 255
        if len(rest) != 1:
            self.usage_error("This command takes one argument: <path>")
            return 255
        try:
            job = load_job(self, rest[0])
            resp = self.call("Error during plan", "PUT", f"/v1/job/{job.id}/plan",
                             {"Job": to_wire(job), "Diff": bool(self.flag("diff"))}) or {}
        except Exception as exc:  # noqa: BLE001 - every failure is exit code 255, as in Nomad
            self.error(str(exc))
            return 255
        updates = (resp.get("Annotations") or {}).get("DesiredTGUpdates") or {}
        if resp.get("Diff") and self.flag("diff"):
            self.output(format_plan_diff(resp["Diff"], updates))
        self.output("Scheduler dry-run:")
        self.output(_dry_run_text(resp.get("FailedTGAllocs") or {}))
        preempted = (resp.get("Annotations") or {}).get("PreemptedAllocs") or []
        if preempted:
            self.output("Preemptions:\n")
            self.output(format_preemptions(preempted))
        index = resp.get("JobModifyIndex", 0)
        self.output(f"Job Modify Index: {index}")
        self.output("To submit the job with version verification run:\n")
        self.output(f"yurt job run -check-index {index} {rest[0]}\n")
        self.output(_CHECK_INDEX_HELP)
        return 1 if _changes_allocations(updates) else 0


PREEMPTION_DISPLAY_THRESHOLD = 10


def format_preemptions(preempted: list[dict]) -> str:
    """Nomad's table: one row per alloc below 10 allocs; else counts per job (below 10
    job types), else counts per job type."""
    if len(preempted) < PREEMPTION_DISPLAY_THRESHOLD:
        rows = ["Alloc ID|Job ID|Task Group"]
        rows += [f"{a.get('ID', '')}|{a.get('JobID', '')}|{a.get('TaskGroup', '')}" for a in preempted]
        return format_list(rows)
    by_type: dict[str, dict[tuple[str, str], int]] = {}
    for a in preempted:
        jobs = by_type.setdefault(a.get("JobType", ""), {})
        key = (a.get("JobID", ""), a.get("Namespace", ""))
        jobs[key] = jobs.get(key, 0) + 1
    if len(by_type) < PREEMPTION_DISPLAY_THRESHOLD:
        rows = ["Job ID|Namespace|Job Type|Preemptions"]
        rows += [f"{job}|{ns}|{typ}|{n}" for typ, jobs in by_type.items() for (job, ns), n in jobs.items()]
    else:
        rows = ["Job Type|Preemptions"] + [f"{typ}|{sum(jobs.values())}" for typ, jobs in by_type.items()]
    return format_list(rows)


def _changes_allocations(updates: dict) -> bool:
    return any(u.get(k, 0) for u in updates.values()
               for k in ("Place", "Stop", "Migrate", "DestructiveUpdate", "Canary"))


def _dry_run_text(failed: dict) -> str:
    if not failed:
        return "- All tasks successfully allocated.\n"
    lines = ["- WARNING: Failed to place all allocations."]
    for group, metric in sorted(failed.items()):
        count = (metric or {}).get("CoalescedFailures", 0) + 1
        noun = "allocation" if count == 1 else "allocations"
        lines.append(f"  Task Group {q(group)} (failed to place {count} {noun}):")
        for reason, nodes in sorted(((metric or {}).get("ConstraintFiltered") or {}).items()):
            lines.append(f"    * Constraint {q(reason)}: {nodes} nodes excluded by filter")
        for dimension, nodes in sorted(((metric or {}).get("DimensionExhausted") or {}).items()):
            lines.append(f"    * Resources exhausted on {nodes} nodes")
            lines.append(f"    * Dimension {q(dimension)} exhausted on {nodes} nodes")
    return "\n".join(lines) + "\n"


def format_plan_diff(diff: dict, updates: dict) -> str:
    lines = [f"{MARKERS.get(diff.get('Type', ''), '')}Job: {q(diff.get('ID', ''))}"]
    lines += fields_and_objects(diff, 0)
    for group in diff.get("TaskGroups") or []:
        name = group.get("Name", "")
        counts = ", ".join(f"{n} {word}" for key, word in _UPDATES
                           if (n := (updates.get(name) or {}).get(key, 0)))
        suffix = f" ({counts})" if counts else ""
        lines.append(f"{MARKERS.get(group.get('Type', ''), '')}Task Group: {q(name)}{suffix}")
        lines += fields_and_objects(group, 2)
        for task in group.get("Tasks") or []:
            notes = ", ".join(task.get("Annotations") or [])
            note = f" ({notes})" if notes else ""
            lines.append(f"  {MARKERS.get(task.get('Type', ''), '')}Task: {q(task.get('Name', ''))}{note}")
            lines += fields_and_objects(task, 4)
    return "\n".join(lines) + "\n"


