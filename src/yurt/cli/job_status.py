"""`job status`: the job list, or one job's details, summary, failures and allocations."""

from typing import Any

from yurt.api import APIError

from .command import Command, CommandError
from .deployment_format import format_deployment
from .format import (
    format_kv,
    format_list,
    format_output,
    format_unix_nano,
    go_duration,
    limit,
    next_launch_text,
    parse_rfc3339,
    pretty_time_diff,
    q,
)
from .job_tables import alloc_metrics, alloc_stub_table, eval_failure_status, job_list_table, job_status_string

MAX_FAILED_TGS = 5


class JobStatusCommand(Command):
    name = "job status"
    synopsis = "Display status information about a job"
    help = """
Usage: yurt job status [options] <job>

  Display status information about a job. If no job ID is given, a list of all
  known jobs will be displayed.

{general}

Status Options:

  -short
    Display short output. Used only when a single job is being
    queried, and drops verbose information about allocations.

  -evals
    Display the evaluations associated with the job.

  -all-allocs
    Display all allocations matching the job ID, including those from an older
    instance of the job.

  -json
    Output the job in its JSON format.

  -t
    Format and display job using a Go template.

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("short", "evals", "all-allocs", "json", "verbose", "ui"):
            self.flags.bool(name)
        self.flags.string("t")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) > 1:
            return self.usage_error("This command takes either no arguments or one: <job>")
        if not rest:
            return self._list()
        job_id, namespace = self.job_id_by_prefix(rest[0].strip())
        job = self.query("Error querying job", f"/v1/job/{job_id}", namespace=namespace)
        if self.flag("json") or self.flag("t"):
            data = self._json_jobs([(job["ID"], job.get("Namespace") or namespace)])
            self.output(format_output(self.flag("json"), self.flag("t"), data))
            return 0
        self.output(format_kv(self._basic(job)))
        if self.flag("short"):
            return 0
        if _is_periodic(job) and not _is_parameterized(job):
            self._children(job, "/periodic-", "Previously Launched Jobs", "No instances of periodic job found")
        elif _is_parameterized(job):
            self._parameterized(job)
        else:
            self._job_info(job)
        return 0

    def _list(self) -> int:
        jobs = self.query("Error querying jobs", "/v1/jobs") or []
        if not jobs:
            self.output("No running jobs")
        elif self.flag("json") or self.flag("t"):
            pairs = [(j["ID"], j.get("Namespace") or "default") for j in jobs]
            self.output(format_output(self.flag("json"), self.flag("t"), self._json_jobs(pairs)))
        else:
            self.output(job_list_table(jobs, self.all_namespaces(), self.ctx.now()))
        return 0

    def _json_jobs(self, pairs: list[tuple[str, str]]) -> list[dict]:
        out = []
        for job_id, ns in pairs:
            summary = self.query("Error querying job summary", f"/v1/job/{job_id}/summary", namespace=ns)
            allocs = self.query("Error querying job allocations", f"/v1/job/{job_id}/allocations",
                                namespace=ns, all=bool(self.flag("all-allocs")))
            deployment = self._latest_deployment(job_id, ns)
            evals = self.query("Error querying job evaluations", f"/v1/job/{job_id}/evaluations", namespace=ns)
            out.append({"Summary": summary, "Allocations": allocs, "LatestDeployment": deployment, "Evaluations": evals})
        return out

    def _latest_deployment(self, job_id: str, ns: str) -> Any:
        try:
            return self.client().get(f"/v1/job/{job_id}/deployment", namespace=ns)
        except APIError as exc:
            if exc.status in (404, 405, 501):
                return None  # a server without deployments
            raise CommandError(f"Error querying latest job deployment: {exc}") from exc

    def _basic(self, job: dict) -> list[str]:
        rows = [
            f"ID|{job.get('ID', '')}",
            f"Name|{job.get('Name', '')}",
            f"Submit Date|{format_unix_nano(job.get('SubmitTime'))}",
            f"Type|{job.get('Type', '')}",
            f"Priority|{job.get('Priority', 0)}",
            f"Datacenters|{','.join(job.get('Datacenters') or [])}",
            f"Namespace|{job.get('Namespace', '')}",
            f"Node Pool|{job.get('NodePool') or ''}",
            f"Status|{job_status_string(job.get('Status', ''), job.get('Stop'))}",
            f"Periodic|{_go_bool(_is_periodic(job))}",
            f"Parameterized|{_go_bool(_is_parameterized(job))}",
        ]
        if job.get("DispatchIdempotencyToken"):
            rows.append(f"Idempotency Token|{job['DispatchIdempotencyToken']}")
        if _is_periodic(job) and not _is_parameterized(job):
            if job.get("Stop"):
                rows.append("Next Periodic Launch|none (job stopped)")
            else:
                launch = next_launch_text(job.get("Periodic"), self.ctx.now())
                if launch:
                    rows.append(f"Next Periodic Launch|{launch}")
        return rows

    def _summary(self, job: dict) -> None:
        ns = job.get("Namespace") or "default"
        summary = self.query("Error querying job summary", f"/v1/job/{job['ID']}/summary", namespace=ns)
        if not summary:
            return
        periodic, param = _is_periodic(job), _is_parameterized(job)
        if not periodic and not param:
            self.output("\nSummary")
            rows = ["Task Group|Queued|Starting|Running|Failed|Complete|Lost|Unknown"]
            groups = summary.get("Summary") or {}
            for name in sorted(groups):
                g = groups[name]
                counts = [g.get(k, 0) for k in ("Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown")]
                rows.append("|".join([name, *map(str, counts)]))
            self.output(format_list(rows))
        children = summary.get("Children")
        if children and (param or periodic or sum(children.get(k, 0) for k in ("Pending", "Running", "Dead"))):
            self.output("\nParameterized Job Summary" if param else "\nChildren Job Summary")
            self.output(format_list(["Pending|Running|Dead",
                                     f"{children.get('Pending', 0)}|{children.get('Running', 0)}|{children.get('Dead', 0)}"]))

    def _children(self, job: dict, suffix: str, title: str, none_text: str) -> None:
        self._summary(job)
        prefix = job["ID"] + suffix
        kids = self.query("Error querying job", "/v1/jobs", prefix=prefix) or []
        kids = [k for k in kids if k.get("ID", "").startswith(prefix)]
        if not kids:
            self.output("\n" + none_text)
            return
        rows = ["ID|Status"] + [f"{k['ID']}|{k.get('Status', '')}" for k in kids if k.get("ParentID") == job["ID"]]
        self.output("\n" + title)
        self.output(format_list(rows))

    def _parameterized(self, job: dict) -> None:
        p = job.get("ParameterizedJob") or {}
        self.output("\nParameterized Job")
        self.output(format_kv([
            f"Payload|{p.get('Payload', '')}",
            f"Required Metadata|{', '.join(p.get('MetaRequired') or [])}",
            f"Optional Metadata|{', '.join(p.get('MetaOptional') or [])}",
        ]))
        self._children(job, "/dispatch-", "Dispatched Jobs", "No dispatched instances of parameterized job found")

    def _job_info(self, job: dict) -> None:
        ns = job.get("Namespace") or "default"
        allocs = self.query("Error querying job allocations", f"/v1/job/{job['ID']}/allocations",
                            namespace=ns, all=bool(self.flag("all-allocs"))) or []
        evals = self.query("Error querying job evaluations", f"/v1/job/{job['ID']}/evaluations", namespace=ns) or []
        deployment = self._latest_deployment(job["ID"], ns)
        self._summary(job)
        rows = ["ID|Priority|Triggered By|Status|Placement Failures"]
        blocked, latest_failed = False, None
        for ev in evals:
            rows.append("|".join([limit(ev.get("ID", ""), self.id_length), str(ev.get("Priority", 0)),
                                  ev.get("TriggeredBy", ""), ev.get("Status", ""), eval_failure_status(ev)[0]]))
            blocked = blocked or ev.get("Status") == "blocked"
            if ev.get("FailedTGAllocs") and (
                latest_failed is None or latest_failed.get("CreateIndex", 0) < ev.get("CreateIndex", 0)
            ):
                latest_failed = ev
        if self.flag("verbose") or self.flag("evals"):
            self.output("\nEvaluations")
            self.output(format_list(rows))
        if blocked and latest_failed:
            self._failed_placements(latest_failed)
        self._rescheduling(job, allocs)
        if deployment:
            self.output("\nLatest Deployment")
            self.output(format_deployment(deployment, self.id_length, with_job=False))
        self.output("\nAllocations")
        self.output(alloc_stub_table(allocs, bool(self.flag("verbose")), self.id_length, self.ctx.now()))

    def _rescheduling(self, job: dict, allocs: list[dict]) -> None:
        """Nomad's "Future Rescheduling Attempts": follow-up evals still waiting to run."""
        newest: dict[str, dict] = {}
        for a in allocs:
            group = a.get("TaskGroup", "")
            if group not in newest or a.get("ModifyTime", 0) > newest[group].get("ModifyTime", 0):
                newest[group] = a
        now, rows = self.ctx.now(), []
        for group in sorted(newest):
            eval_id = newest[group].get("FollowupEvalID")
            if not eval_id:
                continue
            try:
                ev = self.client().get(f"/v1/evaluation/{eval_id}") or {}
            except Exception:  # noqa: BLE001 - Nomad skips evals it cannot read here
                continue
            wait_until = wait_until_seconds(ev.get("WaitUntil"))
            if wait_until is None or wait_until < now:
                continue
            cells = [group, limit(eval_id, self.id_length), pretty_time_diff(wait_until, now)]
            if self.flag("verbose"):
                cells.insert(1, reschedule_policy_text(_group(job, group).get("ReschedulePolicy")))
            rows.append("|".join(cells))
        if rows:
            header = "Task Group|Reschedule Policy|Eval ID|Eval Time" if self.flag("verbose") else "Task Group|Eval ID|Eval Time"
            self.output("\nFuture Rescheduling Attempts")
            self.output(format_list([header, *rows]))

    def _failed_placements(self, ev: dict) -> None:
        groups = sorted(ev.get("FailedTGAllocs") or {})
        self.output("\nPlacement Failure")
        for i, group in enumerate(groups[:MAX_FAILED_TGS]):
            self.output(f"Task Group {q(group)}:")
            self.output(alloc_metrics(ev["FailedTGAllocs"][group], "  "))
            if i != len(groups) - 1:
                self.output("")
        if len(groups) > MAX_FAILED_TGS:
            self.output(f"\nPlacement failures truncated. To see remainder run:\nyurt eval-status {ev['ID']}")


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _is_periodic(job: dict) -> bool:
    return bool(job.get("Periodic"))


def _is_parameterized(job: dict) -> bool:
    return bool(job.get("ParameterizedJob")) and not job.get("Dispatched")


def _group(job: dict, name: str) -> dict:
    return next((g for g in job.get("TaskGroups") or [] if g.get("Name") == name), {})


def wait_until_seconds(value: Any) -> float | None:
    """An eval's `WaitUntil` (Go time string, or integer nanoseconds) as epoch seconds."""
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, (int, float)) and value > 0:
        return value / 1e9
    return None


def reschedule_policy_text(policy: dict | None) -> str:
    """api.ReschedulePolicy.String()."""
    if not policy:
        return ""
    delay_fn, max_delay = policy.get("DelayFunction", ""), go_duration(policy.get("MaxDelay", 0) or 0)
    if policy.get("Unlimited"):
        return f"unlimited with {delay_fn} delay, max_delay = {max_delay}"
    interval = go_duration(policy.get("Interval", 0) or 0)
    return f"{policy.get('Attempts', 0)} in {interval} with {delay_fn} delay, max_delay = {max_delay}"
