"""`job restart`: restart a job's running allocations in place (through the client's
restart route) or, with -reschedule, stop them and wait for their replacements, in
batches, as Nomad's `command/job_restart.go` does.

Batches run one allocation after another (Nomad runs a batch's allocations in parallel;
the output is the same but for its order). Interrupting with Ctrl-C ends the command.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from yurt.structs.durations import parse_duration as parse_go_duration

from .command import Command, CommandError
from .format import format_duration, format_seconds, limit, q
from .job_dispatch import job_path
from .job_tables import alloc_metrics

BATCH_SIZE = re.compile(r"^(\d+)%?$")
PREFIX_WIDTH = 31  # "==> <timestamp>: " of the question lines


class PlacementFailure(Exception):
    """A replacement could not be placed: the same will happen to the next ones."""


@dataclass
class RestartOptions:
    all_tasks: bool = False
    yes: bool = False
    batch_size: int = 1
    batch_percent: bool = False
    batch_wait: int = 0  # ns
    batch_wait_ask: bool = False
    on_error: str = "ask"
    reschedule: bool = False
    no_shutdown_delay: bool = False
    groups: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)


class JobRestartCommand(Command):
    name = "job restart"
    synopsis = "Restart or reschedule allocations for a job"
    help = """
Usage: yurt job restart [options] <job>

  Restart the running allocations of a job, in batches. By default the tasks
  of each allocation are restarted in place (the allocation stays where it
  is). With -reschedule each allocation is stopped instead and the scheduler
  places a replacement, perhaps on another client; the command waits until
  the replacement runs.

{general}

Restart Options:

  -all-tasks
    Restart every task of the allocations, not only the running ones
    (cannot be used with -task).

  -batch-size=<n|n%>
    How many allocations to restart at once: a number or a percentage of the
    allocations to restart. Default 1.

  -batch-wait=<duration|'ask'>
    How long to wait between batches, or "ask" to ask before each batch.
    Default 0s.

  -group=<group-name>
    Only restart allocations of this group. May be repeated.

  -no-shutdown-delay
    With -reschedule: ignore the shutdown_delay of the stopped allocations.

  -on-error=<'ask'|'fail'>
    What to do when a batch fails: "ask" (default) or "fail" to stop.

  -reschedule
    Stop the allocations and wait for their replacements instead of
    restarting them in place (cannot be used with -task).

  -task=<task-name>
    Only restart this task of each allocation. May be repeated.

  -yes
    Answer yes to every question.

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("all-tasks", "yes", "no-shutdown-delay", "reschedule", "verbose"):
            self.flags.bool(name)
        self.flags.string("batch-size", "1").string("batch-wait", "0s").string("on-error", "ask")
        self.flags.list("group").list("task")
        self.opts = RestartOptions()
        self.canceled = False

    # -- arguments -----------------------------------------------------------
    def _interactive(self) -> bool:
        isatty = getattr(self.ctx.stdin, "isatty", None)
        return bool(isatty and isatty())

    def _options(self) -> RestartOptions:
        o = RestartOptions(all_tasks=self.flag("all-tasks"), yes=self.flag("yes"), reschedule=self.flag("reschedule"),
                           no_shutdown_delay=self.flag("no-shutdown-delay"), on_error=self.flag("on-error"),
                           groups=set(self.flag("group")), tasks=set(self.flag("task")))
        size = self.flag("batch-size")
        m = BATCH_SIZE.match(size)
        if not m:
            raise CommandError(f"Invalid -batch-size value {q(size)}: batch size must be an integer or a percentage")
        o.batch_size, o.batch_percent = int(m.group(1)), size.endswith("%")
        if o.batch_size == 0:
            raise CommandError(f"Invalid -batch-size value {q(size)}: number value must be greater than zero")
        wait = self.flag("batch-wait")
        if wait.lower() == "ask":
            if not self._interactive() and not o.yes:
                raise CommandError('Invalid -batch-wait value "ask": "ask" cannot be used when terminal is not interactive')
            o.batch_wait_ask = True
        else:
            try:
                o.batch_wait = parse_go_duration(wait)
            except ValueError as exc:
                raise CommandError(f"Invalid -batch-wait value {q(wait)}: {exc}") from None
        if o.on_error == "ask":
            if not self._interactive() and not o.yes:
                raise CommandError('Invalid -on-error value "ask": "ask" cannot be used when terminal is not interactive')
        elif o.on_error != "fail":
            raise CommandError(f'Invalid -on-error value {q(o.on_error)}: valid options are "ask" and "fail"')
        if o.all_tasks and o.tasks:
            raise CommandError("The -all-tasks option cannot be used with -task")
        if o.reschedule and o.tasks:
            raise CommandError("The -reschedule option cannot be used with -task")
        return o

    # -- output --------------------------------------------------------------
    def _now(self) -> str:
        return format_seconds(self.ctx.now())

    def _header(self, text: str) -> None:
        self.output(f"==> {self._now()}: {text}")

    def _line(self, text: str) -> None:
        self.output(f"    {self._now()}: {text}")

    def _ask(self, question: str, answer_of) -> bool:
        """Ask until `answer_of(answer)` returns a bool (it raises ValueError on junk)."""
        indented = question.replace("\n", "\n" + " " * PREFIX_WIDTH)
        while True:
            self.ctx.out.write(f"==> {self._now()}: {indented} ")
            self.ctx.out.flush()
            line = self.ctx.stdin.readline()
            if not line:
                return False
            try:
                return answer_of(line.strip())
            except ValueError as exc:
                self.output(" " * PREFIX_WIDTH + str(exc))

    # -- main ----------------------------------------------------------------
    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        try:
            if len(rest) != 1:
                raise CommandError("This command takes one argument: <job>")
            self.opts = self._options()
        except CommandError as exc:
            return self.usage_error(str(exc))
        job_id, ns = self.job_id_by_prefix(rest[0].strip())
        job = self.query(f"Error querying job {q(job_id)}", job_path(job_id), namespace=ns) or {}
        if self.opts.reschedule and job.get("Type") not in ("batch", "service", "system"):
            raise CommandError(f"Jobs of type {q(job.get('Type', ''))} are not allowed to be rescheduled.")
        versions = self.query(f"Error retrieving versions of job {q(job_id)}", job_path(job_id, "versions"),
                              namespace=ns) or {}
        by_version = {v.get("Version"): v for v in versions.get("Versions") or []}
        stubs = self.query(f"Error retrieving allocations for job {q(job_id)}", job_path(job_id, "allocations"),
                           namespace=ns, all=True) or []
        allocs = self._eligible(stubs, by_version)
        if not allocs:
            self.output("No allocations to restart")
            return 0
        return self._restart_all(job, ns, allocs)

    def _eligible(self, stubs: list[dict], by_version: dict[int, dict]) -> list[dict]:
        out = []
        for stub in sorted(stubs, key=lambda s: s.get("CreateIndex", 0)):
            short = q(limit(stub["ID"], self.id_length))
            reason = ""
            if stub.get("ClientStatus") != "running" and stub.get("DesiredStatus") != "run":
                reason = (f"because desired status is {q(stub.get('ClientStatus', ''))} and client status is "
                          f"{q(stub.get('DesiredStatus', ''))}")
            elif stub.get("NextAllocation"):
                reason = f"because it has already been replaced by {q(limit(stub['NextAllocation'], self.id_length))}"
            elif self.opts.groups and stub.get("TaskGroup") not in self.opts.groups:
                reason = "because it doesn't have any of requested groups"
            elif self.opts.tasks and not any(_has_task(stub, by_version, t) for t in self.opts.tasks):
                reason = "because it doesn't have any of requested tasks"
            if reason:
                if self.flag("verbose"):
                    self._line(f"Skipping allocation {short} {reason}")
                continue
            out.append({**stub, "_job": by_version.get(stub.get("JobVersion"))})
        return out

    def _restart_all(self, job: dict, ns: str, allocs: list[dict]) -> int:
        o = self.opts
        size = -(-len(allocs) * o.batch_size // 100) if o.batch_percent else o.batch_size
        noun = "allocation" if len(allocs) == 1 else "allocations"
        self._header(f"Restarting {len(allocs)} {noun}")
        errors: list[str] = []
        for start in range(0, len(allocs), size):
            deployment_error = self._active_deployment(job["ID"], ns)
            if deployment_error:
                errors.append(deployment_error)
                break
            batch = allocs[start:start + size]
            if size > 1:
                self._header(f"Restarting {_ordinal(start // size + 1)} batch of {len(batch)} allocations")
            batch_errors = [e for e in (self._handle(a, ns) for a in batch) if e]
            errors += batch_errors
            if start + size >= len(allocs) or not self._between_batches(batch_errors):
                break
        return self._finish(errors)

    def _between_batches(self, batch_errors: list[str]) -> bool:
        """After a batch that is not the last: stop, ask, or wait as the flags say."""
        o = self.opts
        recoverable = not any(e.startswith("__unrecoverable__") for e in batch_errors)
        if batch_errors and o.on_error == "fail":
            self._header("Stopping job restart due to error")
            return False
        if batch_errors and o.yes and not recoverable:
            self._header("Stopping job restart due to unrecoverable error")
            return False
        if not o.yes and (o.batch_wait_ask or (o.on_error == "ask" and batch_errors)):
            if batch_errors:
                self._header(_error_list(batch_errors, PREFIX_WIDTH))
            if not self._should_proceed(bool(batch_errors), recoverable):
                self._header("Job restart canceled")
                self.canceled = True
                return False
        if o.batch_wait > 0:
            self._header(f"Waiting {format_duration(o.batch_wait)} before restarting the next batch")
            self.ctx.sleep(o.batch_wait / 1e9)
        return True

    def _should_proceed(self, failed: bool, recoverable: bool) -> bool:
        if not failed:
            question, options = "Proceed with the next batch?", "Y/n"
        elif recoverable:
            question, options = "Ignore the errors above and proceed with the next batch?", "y/N"
        else:
            question = "The errors above are likely to happen again.\nIgnore them anyway and proceed with the next batch?"
            options = "y/N"
        if self.opts.batch_wait_ask:
            options += "/<wait duration>"

        def answer_of(answer: str) -> bool:
            lowered = answer.lower()
            if lowered == "":
                return not failed
            if lowered in ("y", "yes"):
                return True
            if lowered in ("n", "no"):
                return False
            if not self.opts.batch_wait_ask:
                raise ValueError(f"Invalid answer {q(answer)}")
            try:
                wait = parse_go_duration(answer)
            except ValueError:
                raise ValueError(f"Invalid answer {q(answer)}") from None
            self.opts.batch_wait_ask, self.opts.batch_wait = False, wait
            self._header(f"Proceeding restarts with new wait time of {format_duration(wait)}")
            return True

        return self._ask(f"{question} [{options}]", answer_of)

    def _finish(self, errors: list[str]) -> int:
        if errors:
            if not self.canceled:
                self._header("Job restart finished with errors")
            self.error("\n" + _error_list(errors, 0))
            return 1
        if not self.canceled:
            self._header("Job restart finished")
            self.output("\nJob restarted successfully!")
        return 0

    def _active_deployment(self, job_id: str, ns: str) -> str:
        try:
            deployments = self.get(job_path(job_id, "deployments"), namespace=ns, all=True) or []
        except Exception as exc:  # noqa: BLE001 - reported as Nomad words it
            return f"Error retrieving deployments for job {q(job_id)}: {exc}"
        for d in deployments:
            if d.get("Status") not in ("failed", "successful", "cancelled"):
                return f"Deployment {q(limit(d.get('ID', ''), self.id_length))} is {q(d.get('Status', ''))}"
        return ""

    # -- one allocation ----------------------------------------------------------
    def _handle(self, alloc: dict, ns: str) -> str:
        """'' on success, else the error text (prefixed `__unrecoverable__` for placement failures)."""
        try:
            if self.opts.reschedule:
                self._reschedule(alloc, ns)
            else:
                self._restart(alloc)
            return ""
        except PlacementFailure as exc:
            return f"__unrecoverable__Error restarting allocation {q(limit(alloc['ID'], self.id_length))}: {exc}"
        except CommandError as exc:
            return f"Error restarting allocation {q(limit(alloc['ID'], self.id_length))}: {exc}"

    def _restart(self, alloc: dict) -> None:
        short, group = q(limit(alloc["ID"], self.id_length)), q(alloc.get("TaskGroup", ""))
        path = f"/v1/client/allocation/{alloc['ID']}/restart"
        if self.opts.all_tasks or not self.opts.tasks:
            which = "all tasks" if self.opts.all_tasks else "running tasks"
            self._line(f"Restarting {which} in allocation {short} for group {group}")
            self.call("Failed to restart", "PUT", path, {"TaskName": "", "AllTasks": self.opts.all_tasks})
            return
        for task in sorted(self.opts.tasks):
            if not _has_task(alloc, {}, task):
                continue
            self._line(f"Restarting task {q(task)} in allocation {short} for group {group}")
            self.call(f"Failed to restart task {q(task)}", "PUT", path, {"TaskName": task})

    def _reschedule(self, alloc: dict, ns: str) -> None:
        short = q(limit(alloc["ID"], self.id_length))
        self._line(f"Rescheduling allocation {short} for group {q(alloc.get('TaskGroup', ''))}")
        params: dict[str, Any] = {"no_shutdown_delay": True} if self.opts.no_shutdown_delay else {}
        try:
            resp, meta = self.client().request("PUT", f"/v1/allocation/{alloc['ID']}/stop", params, None)
        except Exception as exc:  # noqa: BLE001
            raise CommandError(f"Failed to stop allocation: {exc}") from None
        since = meta.last_index or (resp or {}).get("Index", 0)
        job = alloc.get("_job") or {}
        if job.get("Type") == "system":
            self.call("Failed evaluate job", "PUT", job_path(alloc["JobID"], "evaluate"),
                      {"JobID": alloc["JobID"], "EvalOptions": {"ForceReschedule": True}}, namespace=ns)
        self._wait_for_replacement(alloc, ns, since)

    def _wait_for_replacement(self, alloc: dict, ns: str, since: int) -> None:
        current = alloc["ID"]
        while True:
            self._check_placement(alloc, ns, since)
            info = self.query(f"Failed to retrieve allocation {q(limit(current, self.id_length))}",
                              f"/v1/allocation/{current}") or {}
            if info.get("NextAllocation"):
                nxt = q(limit(info["NextAllocation"], self.id_length))
                self._line(f"Allocation {q(limit(current, self.id_length))} replaced by {nxt}, "
                           f"waiting for {nxt} to start running")
                current = info["NextAllocation"]
                continue
            if info.get("ClientStatus") == "running" and current != alloc["ID"]:
                self._line(f"Allocation {q(limit(current, self.id_length))} is \"running\"")
                return
            if self.flag("verbose"):
                self._line(f"Allocation {q(limit(current, self.id_length))} is {q(info.get('ClientStatus', ''))}")
            self.ctx.sleep(self.ctx.poll_interval)

    def _check_placement(self, alloc: dict, ns: str, since: int) -> None:
        evals = self.query(f"Failed to retrieve evaluations for job {q(alloc['JobID'])}",
                           job_path(alloc["JobID"], "evaluations"), namespace=ns) or []
        group = alloc.get("TaskGroup", "")
        for ev in evals:
            if ev.get("CreateIndex", 0) < since or ev.get("Status") != "blocked":
                continue
            failures = (ev.get("FailedTGAllocs") or {}).get(group)
            if failures is not None:
                raise PlacementFailure(f"Evaluation {q(limit(ev['ID'], self.id_length))} has placement failures "
                                       f"for group {q(group)}:\n{alloc_metrics(failures, '    ')}")


def _has_task(alloc: dict, by_version: dict, task: str) -> bool:
    if task in (alloc.get("TaskStates") or {}):
        return True
    job = alloc.get("_job") or by_version.get(alloc.get("JobVersion")) or {}
    for tg in job.get("TaskGroups") or []:
        if tg.get("Name") == alloc.get("TaskGroup"):
            return any(t.get("Name") == task for t in tg.get("Tasks") or [])
    return False


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _error_list(errors: list[str], indent: int) -> str:
    clean = [e.removeprefix("__unrecoverable__").strip() for e in errors]
    noun = "1 error" if len(clean) == 1 else f"{len(clean)} errors"
    text = f"{noun} occurred while restarting job:\n" + "\n".join(f"* {e}" for e in clean)
    return text.replace("\n", "\n" + " " * indent) if indent else text
