"""`eval status` and `eval list`."""

from .command import Command, CommandError, sanitize_uuid_prefix
from .format import format_kv, format_output, format_time_string, format_unix_nano, limit, pretty_nano_diff, q
from .job_tables import alloc_metrics, alloc_stub_table, eval_failure_status, eval_list_table
from .monitor import EvalMonitor


class EvalStatusCommand(Command):
    name = "eval status"
    synopsis = "Display evaluation status and placement failure reasons"
    help = """
Usage: yurt eval status [options] <evaluation>

  Display information about evaluations. This command can be used to inspect the
  current status of an evaluation as well as determine the reason an evaluation
  did not place all allocations.

{general}

Eval Status Options:

  -monitor
    Monitor an outstanding evaluation

  -verbose
    Show full-length IDs, exact timestamps, and all plan annotation fields.

  -json
    Output the evaluation in its JSON format.

  -t
    Format and display evaluation using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("monitor").bool("verbose").bool("json").bool("ui").string("t")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument")
        if len(rest[0]) == 1:
            raise CommandError("Identifier must contain at least two characters.")
        if self.flag("json") and self.flag("t"):
            raise CommandError("Both json and template formatting are not allowed")
        prefix = sanitize_uuid_prefix(rest[0])
        evals = self.lookup_by_prefix("Error querying evaluation", "/v1/evaluations", prefix)
        if not evals:
            raise CommandError(f"No evaluation(s) with prefix or id {q(prefix)} found")
        if len(evals) > 1:
            table = eval_list_table(evals, self.id_length)
            raise CommandError(f"Prefix matched multiple evaluations\n\n{table}")
        if self.flag("monitor"):
            return EvalMonitor(self, self.id_length).monitor(evals[0]["ID"])
        ev = self.query("Error querying evaluation", f"/v1/evaluation/{evals[0]['ID']}")
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), ev))
            return 0
        placed = self.query("Error querying related allocations", f"/v1/evaluation/{ev['ID']}/allocations") or []
        self._format(ev, placed)
        return 0

    def _format(self, ev: dict, placed: list[dict]) -> None:
        length, now, verbose = self.id_length, self.ctx.now(), self.flag("verbose")
        failure_text, failures = eval_failure_status(ev)
        if verbose:
            created, modified = format_unix_nano(ev.get("CreateTime")), format_unix_nano(ev.get("ModifyTime"))
        else:
            created, modified = pretty_nano_diff(ev.get("CreateTime"), now), pretty_nano_diff(ev.get("ModifyTime"), now)
        rows = [
            f"ID|{limit(ev.get('ID', ''), length)}", f"Create Time|{created}", f"Modify Time|{modified}",
            f"Status|{ev.get('Status', '')}", f"Status Description|{ev.get('StatusDescription') or ev.get('Status', '')}",
            f"Type|{ev.get('Type', '')}", f"TriggeredBy|{ev.get('TriggeredBy', '')}", f"Job ID|{ev.get('JobID', '')}",
            f"Namespace|{ev.get('Namespace', '')}",
        ]
        trigger = {"node-update": ("Node ID", ev.get("NodeID", "")),
                   "max-plan-attempts": ("Previous Eval", ev.get("PreviousEval", ""))}.get(ev.get("TriggeredBy", ""))
        if trigger and trigger[1]:
            rows.append(f"{trigger[0]}|{trigger[1]}")
        rows += [f"Priority|{ev.get('Priority', 0)}", f"Placement Failures|{failure_text}"]
        wait_until = ev.get("WaitUntil")
        if isinstance(wait_until, str) and format_time_string(wait_until):
            rows.append(f"Wait Until|{format_time_string(wait_until)}")
        elif isinstance(wait_until, int) and wait_until:
            rows.append(f"Wait Until|{format_unix_nano(wait_until)}")
        if ev.get("QuotaLimitReached"):
            rows.append(f"Quota Limit Reached|{ev['QuotaLimitReached']}")
        rows += [f"Previous Eval|{limit(ev.get('PreviousEval', ''), length)}",
                 f"Next Eval|{limit(ev.get('NextEval', ''), length)}",
                 f"Blocked Eval|{limit(ev.get('BlockedEval', ''), length)}"]
        self.output(format_kv(rows))
        if placed:
            self.output("\nPlaced Allocations")
            self.output(alloc_stub_table(placed, False, length, now))
        if failures:
            self.output("\nFailed Placements")
            for group in sorted(ev["FailedTGAllocs"]):
                metrics = ev["FailedTGAllocs"][group] or {}
                count = (metrics.get("CoalescedFailures") or 0) + 1
                noun = "allocation" if count == 1 else "allocations"
                self.output(f"Task Group {q(group)} (failed to place {count} {noun}):")
                self.output(alloc_metrics(metrics, "  "))
            if ev.get("BlockedEval"):
                self.output(f"\nEvaluation {q(limit(ev['BlockedEval'], length))} waiting for additional capacity to place remainder")


class EvalListCommand(Command):
    name = "eval list"
    synopsis = "List the set of evaluations"
    help = """
Usage: yurt eval list [options]

  List the set of evaluations processed by Nomad.

{general}

Eval List Options:

  -verbose
    Show full information.

  -job <job_id>
    Only show evaluations for this job ID.

  -status <status>
    Only show evaluations with this status.

  -json
    Output the evaluation in its JSON format.

  -t
    Format and display evaluation using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose").bool("json").bool("ui").string("t").int("per-page").string("page-token")
        self.flags.string("filter").string("job").string("status")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest:
            return self.usage_error("This command takes no arguments")
        params = {"filter": self.flag("filter") or None, "job": self.flag("job") or None,
                  "status": self.flag("status") or None}
        evals = self.query("Error querying evaluations", "/v1/evaluations", **params) or []
        if self.flag("job"):
            evals = [e for e in evals if e.get("JobID") == self.flag("job")]
        if self.flag("status"):
            evals = [e for e in evals if e.get("Status") == self.flag("status")]
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), evals))
            return 0
        if not evals:
            self.output("No evals found")
            return 0
        self.output(eval_list_table(evals, self.id_length))
        return 0

