"""`job revert`, `job scale` and `job start`: register another version of an existing job
and monitor its evaluation, with Nomad's output."""

from typing import Any

from .command import Command, CommandError
from .format import format_list, format_seconds, next_launch_text, q
from .job_dispatch import DETACH_VERBOSE_HELP, job_path
from .monitor import EvalMonitor

SCALE_MESSAGE = "submitted using the Nomad CLI"


def _is_periodic(job: dict) -> bool:
    return bool(job.get("Periodic"))


def _is_parameterized(job: dict) -> bool:
    return bool(job.get("ParameterizedJob")) and not job.get("Dispatched")


def finish_registration(cmd: Command, job: dict, eval_id: str, success: str) -> int:
    """What `job run`, `job scale` and `job start` print after a register: a short summary
    for -detach, periodic and parameterized jobs, else the evaluation monitor."""
    periodic, param = _is_periodic(job), _is_parameterized(job)
    if cmd.flag("detach") or periodic or param or job.get("Multiregion"):
        cmd.output(success)
        if periodic and not param:
            launch = next_launch_text(job.get("Periodic"), cmd.ctx.now())
            if launch:
                cmd.output(f"Approximate next launch time: {launch}")
        elif not param:
            cmd.output("Evaluation ID: " + eval_id)
        return 0
    return EvalMonitor(cmd, cmd.id_length).monitor(eval_id)


class JobRevertCommand(Command):
    name = "job revert"
    synopsis = "Revert to a prior version of the job"
    help = """
Usage: yurt job revert [options] <job> <version|tag>

  Register an earlier version of a job again (as a new version), given its
  version number or its version tag. `yurt job history` lists the versions.

{general}

Revert Options:

""" + DETACH_VERBOSE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose").string("consul-token").string("vault-token")

    def _version(self, job_id: str, ns: str, text: str) -> int:
        if text.isdigit():
            return int(text)
        resp = self.query("Error retrieving job versions", job_path(job_id, "versions"), namespace=ns) or {}
        for version in resp.get("Versions") or []:
            if (version.get("VersionTag") or {}).get("Name") == text:
                return int(version.get("Version", 0))
        raise CommandError(f"Error retrieving job versions: version tag {text} not found for job {job_id}")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 2:
            return self.usage_error("This command takes two arguments: <job> <version|tag>")
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        version = self._version(job_id, ns, rest[1])
        resp = self.call("Error retrieving job versions", "PUT", job_path(job_id, "revert"),
                         {"JobID": job_id, "JobVersion": version}, namespace=ns) or {}
        eval_id = resp.get("EvalID", "")
        if not eval_id:
            return 0
        if self.flag("detach"):
            self.output("Evaluation ID: " + eval_id)
            return 0
        return EvalMonitor(self, self.id_length).monitor(eval_id)


class JobScaleCommand(Command):
    name = "job scale"
    synopsis = "Change the count of a Nomad job group"
    help = """
Usage: yurt job scale [options] <job> [<group>] <count>

  Set the count of a task group of a job. The group may be left out when the
  job has only one.

{general}

Scale Options:

  -check-index
    Only scale when the job's modify index equals this value.

""" + DETACH_VERBOSE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose").int("check-index")

    @staticmethod
    def _group(groups: dict[str, Any], group: str) -> str:
        if len(groups) > 1 and not group:
            raise CommandError("Group name required")
        if not group and len(groups) == 1:
            return next(iter(groups))
        if group in groups:
            return group
        raise CommandError(f"Group {group} not found within job")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not 2 <= len(rest) <= 3:
            self.error("Command requires at least two arguments and no more than three")
            return 1
        group, count_text = (rest[1], rest[2]) if len(rest) == 3 else ("", rest[1])
        try:
            count = int(count_text)
        except ValueError:
            raise CommandError(f'Failed to convert count string to int: strconv.Atoi: parsing {q(count_text)}: '
                               'invalid syntax') from None
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        status = self.query("Error querying job", job_path(job_id, "scale"), namespace=ns) or {}
        group = self._group(status.get("TaskGroups") or {}, group)
        body = {"Count": count, "Target": {"Job": job_id, "Group": group}, "Message": SCALE_MESSAGE,
                "PolicyOverride": False, "JobModifyIndex": self.flag("check-index")}
        resp = self.call("Error submitting scaling request", "PUT", job_path(job_id, "scale"), body, namespace=ns) or {}
        if resp.get("Warnings"):
            self.output(f"Job Warnings:\n{resp['Warnings']}\n")
        job = self.query("Error looking up job", job_path(job_id), namespace=ns) or {}
        return finish_registration(self, job, resp.get("EvalID", ""), "Job scale successful")


class JobStartCommand(Command):
    name = "job start"
    synopsis = "Start a stopped job"
    help = """
Usage: yurt job start [options] <job>

  Start a stopped job again: its latest version is registered once more
  without the stop mark (as a new version).

{general}

Start Options:

""" + DETACH_VERBOSE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose").string("consul-token").string("vault-token")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job>")
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        job = self.query(f"Error querying job {q(job_id)}", job_path(job_id), namespace=ns) or {}
        if not job.get("Stop"):
            raise CommandError(f"Job {q(job.get('Name', ''))} has not been stopped")
        job["Stop"] = False
        resp = self.call("Error submitting job", "PUT", "/v1/jobs", {"Job": job}, namespace=ns) or {}
        return finish_registration(self, job, resp.get("EvalID", ""), "Job start successful")


class JobScalingEventsCommand(Command):
    name = "job scaling-events"
    synopsis = "Display the most recent scaling events for a job"
    help = """
Usage: yurt job scaling-events [options] <args>

  List the scaling events recorded for a job's task groups, newest first.

{general}

Scaling-Events Options:

  -verbose
    Also show the error flag, message and evaluation ID of each event.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job_id>")
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        status = self.query("Error listing scaling events", job_path(job_id, "scale"), namespace=ns) or {}
        events = [(group, e) for group, tg in (status.get("TaskGroups") or {}).items()
                  for e in (tg or {}).get("Events") or []]
        if not events:
            self.output("No events found")
            return 0
        events.sort(key=lambda ge: -(ge[1].get("Time") or 0))
        verbose = self.flag("verbose")
        header = "Task Group|Count|PrevCount" + ("|Error|Message|Eval ID" if verbose else "") + "|Date"
        rows = [header]
        for group, e in events:
            count = "" if e.get("Count") is None else str(e["Count"])
            row = f"{group}|{count}|{e.get('PreviousCount', 0)}"
            if verbose:
                row += f"|{'true' if e.get('Error') else 'false'}|{e.get('Message', '')}|{e.get('EvalID') or ''}"
            rows.append(row + "|" + format_seconds((e.get("Time") or 0) / 1e9))
        self.output(format_list(rows))
        return 0
