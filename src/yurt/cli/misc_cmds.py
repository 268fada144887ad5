"""`server members`, `version`, `operator scheduler get-config|set-config`."""

from yurt import NOMAD_COMPAT_VERSION, __version__

from .command import Command, CommandError
from .format import columnize, format_kv, format_output, q


def _go_bool(value: object) -> str:
    return "true" if value else "false"


class ServerMembersCommand(Command):
    name = "server members"
    synopsis = "Display a list of known servers and their status"
    help = """
Usage: yurt server members [options]

  Display a list of the known servers and their status. Only Nomad servers are
  able to service this command.

{general}

Server Members Options:

  -verbose
    Show detailed information about each member. This dumps a raw set of tags
    which shows more information than the default output format.

  -json
    Output the latest information about each member in a JSON format.

  -t
    Format and display latest information about each member using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detailed").bool("verbose").bool("json").bool("ui").string("t")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest:
            return self.usage_error("This command takes no arguments")
        resp = self.query("Error querying servers", "/v1/agent/members")
        if resp is None:
            self.error("Agent doesn't know about server members")
            return 0
        members = sorted(resp.get("Members") or [], key=lambda m: m.get("Name", ""))
        leaders, leader_error = self._leaders(members)
        for m in members:
            m["_leader"] = self._is_leader(m, leaders)
        if self.flag("json") or self.flag("t"):
            for m in members:
                m.setdefault("Tags", {})["Leader"] = _go_bool(m.pop("_leader"))
            self.output(format_output(self.flag("json"), self.flag("t"), members))
            return 0
        verbose = self.flag("verbose") or self.flag("detailed")
        self.output(columnize(self._rows(members, verbose)))
        if leader_error:
            self.output("")
            self.error(f"Error determining leaders: {leader_error}")
            return 1
        return 0

    @staticmethod
    def _rows(members: list[dict], verbose: bool) -> list[str]:
        if verbose:
            rows = ["Name|Address|Port|Status|Leader|Protocol|Raft Version|Build|Datacenter|Region|Tags"]
        else:
            rows = ["Name|Address|Port|Status|Leader|Raft Version|Build|Datacenter|Region"]
        for m in members:
            tags = m.get("Tags") or {}
            cells = [m.get("Name", ""), m.get("Addr", ""), str(m.get("Port", 0)), m.get("Status", ""),
                     _go_bool(m.get("_leader"))]
            if verbose:
                cells.append(str(m.get("ProtocolCur", 0)))
            cells += [tags.get("raft_vsn", ""), tags.get("build", ""), tags.get("dc", ""), tags.get("region", "")]
            if verbose:
                cells.append(",".join(f"{k}={v}" for k, v in sorted(tags.items())))
            rows.append("|".join(cells))
        return rows

    def _leaders(self, members: list[dict]) -> tuple[dict[str, str], str]:
        regions = sorted({(m.get("Tags") or {}).get("region", "") for m in members if m.get("Status") != "left"})
        leaders: dict[str, str] = {}
        errors = []
        for region in regions:
            try:
                leaders[region] = self.client().get("/v1/status/leader", region=region) or ""
            except Exception as exc:  # noqa: BLE001 - reported after the table, as Nomad does
                errors.append(f"Region {q(region)}: {exc}")
        return leaders, "; ".join(errors)

    @staticmethod
    def _is_leader(member: dict, leaders: dict[str, str]) -> bool:
        tags = member.get("Tags") or {}
        addr = member.get("Addr", "")
        host = f"[{addr}]" if ":" in addr else addr
        leader = leaders.get(tags.get("region", ""))
        return leader is not None and leader == f"{host}:{tags.get('port', '')}"


class VersionCommand(Command):
    name = "version"
    synopsis = "Prints the yurt version"
    help = """
Usage: yurt version

  Prints the yurt version and the Nomad API version it is compatible with.
"""

    def run(self, args: list[str]) -> int:
        self.output(f"yurt v{__version__} (Nomad API {NOMAD_COMPAT_VERSION})")
        return 0


class SchedulerGetConfigCommand(Command):
    name = "operator scheduler get-config"
    synopsis = "Display the current scheduler configuration"
    help = """
Usage: yurt operator scheduler get-config [options]

  Displays the current scheduler configuration.

{general}

Scheduler Get Config Options:

  -json
    Output the scheduler config in its JSON format.

  -t
    Format and display the scheduler config using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("json").string("t")

    def run(self, args: list[str]) -> int:
        if self.parse(args) is None:
            return 1
        resp = self.query("Error querying scheduler configuration", "/v1/operator/scheduler/configuration") or {}
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), resp))
            return 0
        cfg = resp.get("SchedulerConfig") or {}
        pre = cfg.get("PreemptionConfig") or {}
        self.output(format_kv([
            f"Scheduler Algorithm|{cfg.get('SchedulerAlgorithm', '')}",
            f"Memory Oversubscription|{_go_bool(cfg.get('MemoryOversubscriptionEnabled'))}",
            f"Reject Job Registration|{_go_bool(cfg.get('RejectJobRegistration'))}",
            f"Pause Eval Broker|{_go_bool(cfg.get('PauseEvalBroker'))}",
            f"Preemption System Scheduler|{_go_bool(pre.get('SystemSchedulerEnabled'))}",
            f"Preemption Service Scheduler|{_go_bool(pre.get('ServiceSchedulerEnabled'))}",
            f"Preemption Batch Scheduler|{_go_bool(pre.get('BatchSchedulerEnabled'))}",
            f"Preemption SysBatch Scheduler|{_go_bool(pre.get('SysBatchSchedulerEnabled'))}",
            f"Node Limit For Feasibility Checks|{cfg.get('NodeLimitForFeasibilityChecks', 0)}",
            f"Modify Index|{cfg.get('ModifyIndex', 0)}",
        ]))
        return 0


_BOOL_SETTINGS = {
    "memory-oversubscription": ("MemoryOversubscriptionEnabled", None),
    "reject-job-registration": ("RejectJobRegistration", None),
    "pause-eval-broker": ("PauseEvalBroker", None),
    "preempt-batch-scheduler": ("BatchSchedulerEnabled", "PreemptionConfig"),
    "preempt-service-scheduler": ("ServiceSchedulerEnabled", "PreemptionConfig"),
    "preempt-sysbatch-scheduler": ("SysBatchSchedulerEnabled", "PreemptionConfig"),
    "preempt-system-scheduler": ("SystemSchedulerEnabled", "PreemptionConfig"),
}


class SchedulerSetConfigCommand(Command):
    name = "operator scheduler set-config"
    synopsis = "Modify the current scheduler configuration"
    help = """
Usage: yurt operator scheduler set-config [options]

  Modifies the current scheduler configuration.

{general}

Scheduler Set Config Options:

  -check-index
    If set, the scheduler config is only updated if the passed modify index
    matches the current server side version.

  -memory-oversubscription=[true|false]
  -pause-eval-broker=[true|false]
  -preempt-batch-scheduler=[true|false]
  -preempt-service-scheduler=[true|false]
  -preempt-sysbatch-scheduler=[true|false]
  -preempt-system-scheduler=[true|false]
  -reject-job-registration=[true|false]

  -scheduler-algorithm=[binpack|spread]
    Specifies whether scheduler binpacks or spreads allocations on available
    nodes.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.string("check-index").string("scheduler-algorithm").int("node-limit-for-feasibility-checks", -1)
        for name in _BOOL_SETTINGS:
            self.flags.optbool(name)

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest:
            return self.usage_error("This command takes no arguments")
        check = self.flag("check-index")
        try:
            check_index = int(check) if check else 0
        except ValueError:
            raise CommandError(f"Error parsing check-index value {q(check)}: invalid syntax") from None
        resp = self.query("Error querying for scheduler configuration", "/v1/operator/scheduler/configuration") or {}
        cfg = dict(resp.get("SchedulerConfig") or {})
        if check_index > 0 and cfg.get("ModifyIndex") != check_index:
            raise CommandError(
                "Error performing check index set: check-index "
                f"{check_index} does not match does not match current state value {cfg.get('ModifyIndex')}"
            )
        self._merge(cfg)
        result = self.call("Error setting scheduler configuration", "PUT", "/v1/operator/scheduler/configuration",
                           cfg, cas=cfg.get("ModifyIndex", 0)) or {}
        if result.get("Updated", True):
            self.output("Scheduler configuration updated!")
            return 0
        self.output("Scheduler configuration could not be atomically updated, please try again")
        return 1

    def _merge(self, cfg: dict) -> None:
        if self.flag("scheduler-algorithm"):
            cfg["SchedulerAlgorithm"] = self.flag("scheduler-algorithm")
        if self.flag("node-limit-for-feasibility-checks") >= 0:
            cfg["NodeLimitForFeasibilityChecks"] = self.flag("node-limit-for-feasibility-checks")
        for flag, (key, parent) in _BOOL_SETTINGS.items():
            value = self.flag(flag)
            if value is None:
                continue
            target = cfg.setdefault(parent, {}) if parent else cfg
            target[key] = value
