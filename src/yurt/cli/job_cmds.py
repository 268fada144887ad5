"""`job inspect`, `job history`, `job stop` and `job init`."""

from typing import Any

from .command import Command, CommandError
from .format import columnize, format_output, format_unix_nano, q, to_json
from .jobdiff import MARKERS, fields_and_objects
from .monitor import EvalMonitor

DEFAULT_INIT_NAME = "example.nomad.hcl"


def _parse_version(text: str) -> int:
    try:
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise CommandError(
            f"Error parsing version value {q(text)}: strconv.ParseUint: parsing {q(text)}: invalid syntax"
        ) from None


class JobInspectCommand(Command):
    name = "job inspect"
    synopsis = "Inspect a submitted job"
    help = """
Usage: yurt job inspect [options] <job>
Alias: yurt inspect

  Inspect is used to see the specification of a submitted job.

{general}

Inspect Options:

  -version <job version>
    Display the job at the given job version.

  -json
    Output the job in its JSON format.

  -t
    Format and display job using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("json").bool("hcl").bool("with-vars").string("t").string("version")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        as_json, tmpl = self.flag("json"), self.flag("t")
        if self.flag("hcl") and as_json:
            self.error("can only use one of -hcl or -json")
            return 1
        if not rest and (as_json or tmpl):
            jobs = self.query("Error querying jobs", "/v1/jobs")
            self.output(format_output(as_json, tmpl, jobs))
            return 0
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job>")
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        version = _parse_version(self.flag("version")) if self.flag("version") else None
        if self.flag("hcl"):
            return self._hcl(job_id, ns, version)
        job = self._job(job_id, ns, version)
        if as_json or tmpl:
            self.output(format_output(as_json, tmpl, job))
        else:
            self.output(to_json({"Job": job}))
        return 0

    def _job(self, job_id: str, ns: str, version: int | None) -> dict:
        if version is None:
            return self.query("Error inspecting job", f"/v1/job/{job_id}", namespace=ns)
        resp = self.query("Error inspecting job", f"/v1/job/{job_id}/versions", namespace=ns) or {}
        for job in resp.get("Versions") or []:
            if job.get("Version") == version:
                return job
        raise CommandError(f"Error inspecting job: job {q(job_id)} with version {version} couldn't be found")

    def _hcl(self, job_id: str, ns: str, version: int | None) -> int:
        if version is None:
            version = self._job(job_id, ns, None).get("Version", 0)
        sub = self.query("Error inspecting job", f"/v1/job/{job_id}/submission", namespace=ns, version=version)
        self.output((sub or {}).get("Source", ""))
        return 0


class JobHistoryCommand(Command):
    name = "job history"
    synopsis = "Display all tracked versions of a job"
    help = """
Usage: yurt job history [options] <job>

  History is used to display the known versions of a particular job. The command
  can display the diff between job versions and can be useful for understanding
  the changes that occurred to the job as well as deciding job versions to revert
  to.

{general}

History Options:

  -p
    Display the difference between each job and its predecessor.

  -full
    Display the full job definition for each version.

  -version <job version>
    Display only the history for the given job version.

  -json
    Output the job versions in a JSON format.

  -t
    Format and display the job versions using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("p").bool("full").bool("json").string("version").string("t")
        self.flags.string("diff-tag").string("diff-version")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job>")
        as_json, tmpl = self.flag("json"), self.flag("t")
        if (as_json or tmpl) and (self.flag("p") or self.flag("full")):
            self.error("-json and -t are exclusive with -p and -full")
            return 1
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        params: dict[str, Any] = {"namespace": ns, "diffs": bool(self.flag("p"))}
        resp = self.query("Error retrieving job versions", f"/v1/job/{job_id}/versions", **params) or {}
        versions, diffs = resp.get("Versions") or [], resp.get("Diffs") or []
        if self.flag("version"):
            wanted = _parse_version(self.flag("version"))
            job, diff = None, None
            for i, v in enumerate(versions):
                if v.get("Version") == wanted:
                    job, diff = v, (diffs[i] if i < len(diffs) else None)
            if as_json or tmpl:
                self.output(format_output(as_json, tmpl, job))
                return 0
            self._version(job, diff)
            return 0
        if as_json or tmpl:
            self.output(format_output(as_json, tmpl, versions))
            return 0
        for i, job in enumerate(versions):
            self._version(job, diffs[i] if i < len(diffs) else None)
            if i != len(versions) - 1:
                self.output("")
        return 0

    def _version(self, job: dict | None, diff: dict | None) -> None:
        if job is None:
            raise CommandError("Error printing job history for non-existing job or job version")
        rows = [
            f"Version|{job.get('Version', 0)}",
            f"Stable|{'true' if job.get('Stable') else 'false'}",
            f"Submit Date|{format_unix_nano(job.get('SubmitTime'))}",
        ]
        tag = job.get("VersionTag")
        if tag:
            rows.append(f"Tag Name|{tag.get('Name', '')}")
            if tag.get("Description"):
                rows.append(f"Tag Description|{tag['Description']}")
        if diff and diff.get("Type") != "None":
            rows.append("Diff|\n" + format_job_diff(diff).strip())
        if self.flag("full"):
            rows.append("Full|JSON Job:\n" + to_json(job))
        # NoTrim columnize of multi-line cells: only the first line of a cell is aligned.
        self.output(columnize([r.replace("\n", "\0") for r in rows], glue=" = ").replace("\0", "\n"))




def format_job_diff(diff: dict, indent: int = 0) -> str:
    """A plain rendering of Nomad's JobDiff (markers `+`, `-`, `+/-`; no colour)."""
    pad = " " * indent
    lines = [f"{pad}{MARKERS.get(diff.get('Type', ''), '')}Job: {q(diff.get('ID', ''))}"]
    lines += fields_and_objects(diff, indent)
    for group in diff.get("TaskGroups") or []:
        lines.append(f"{pad}{MARKERS.get(group.get('Type', ''), '')}Task Group: {q(group.get('Name', ''))}")
        lines += fields_and_objects(group, indent + 2)
        for task in group.get("Tasks") or []:
            lines.append(f"{pad}  {MARKERS.get(task.get('Type', ''), '')}Task: {q(task.get('Name', ''))}")
            lines += fields_and_objects(task, indent + 4)
    return "\n".join(lines) + "\n"


class JobStopCommand(Command):
    name = "job stop"
    synopsis = "Stop a running job"
    help = """
Usage: yurt job stop [options] <job>
Alias: yurt stop

  Stop an existing job. This command is used to signal allocations to shut
  down for the given job ID. Upon successful deregistration, an interactive
  monitor session will start to display log lines as the job unwinds its
  allocations and completes shutting down.

{general}

Stop Options:

  -detach
    Return immediately instead of entering monitor mode. After the
    deregister command is submitted, a new evaluation ID is printed to the
    screen.

  -purge
    Purge is used to stop the job and purge it from the system. If not set, the
    job will still be queryable and will be purged by the garbage collector.

  -yes
    Automatic yes to prompts.

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("detach", "verbose", "global", "no-shutdown-delay", "yes", "purge"):
            self.flags.bool(name)
        self.flags.int("eval-priority")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not rest:
            return self.usage_error("This command takes at least one argument: <job>")
        worst = 0
        for job_ref in rest:
            try:
                status = self._stop_one(job_ref, single=len(rest) == 1)
            except CommandError as exc:
                self.error(str(exc))
                status = 1
            worst = worst or status
        return worst

    def _stop_one(self, job_ref: str, single: bool) -> int:
        job_id, ns = self.job_id_by_prefix(job_ref)
        job = self.query(f"Error querying job {q(job_id)}", f"/v1/job/{job_id}", namespace=ns)
        if single and job_ref != job["ID"] and not self.flag("yes"):
            code, confirmed = self._confirm(f"Are you sure you want to stop job {q(job['ID'])}? [y/N]")
            if not confirmed:
                return code
        params: dict[str, Any] = {"namespace": ns, "purge": bool(self.flag("purge")),
                                  "global": bool(self.flag("global"))}
        if self.flag("no-shutdown-delay"):
            params["no_shutdown_delay"] = True
        if self.flag("eval-priority"):
            params["eval_priority"] = self.flag("eval-priority")
        what = f"Error deregistering job with id {job_ref} err"
        resp = self.call(what, "DELETE", f"/v1/job/{job['ID']}", **params) or {}
        eval_id = resp.get("EvalID", "")
        if not eval_id:
            return 0
        if self.flag("detach"):
            self.output(eval_id)
            return 0
        return EvalMonitor(self, self.id_length).monitor(eval_id)

    def _confirm(self, question: str) -> tuple[int, bool]:
        return self.confirm(question, "Cancelling job stop")
