"""`alloc status`: one allocation's details, task resources and task events."""

import math

from .command import Command, CommandError, sanitize_uuid_prefix
from .format import (
    format_kv,
    format_list,
    format_list_with_spaces,
    format_output,
    format_time_string,
    format_unix_nano,
    go_duration,
    ibytes,
    limit,
    pretty_nano_diff,
    pretty_time_diff,
    q,
)
from .job_tables import alloc_metrics, alloc_stub_table, cpu_shares

MB = 1024 * 1024


def find_alloc(cmd: Command, alloc_ref: str, multiple_is_error: bool) -> dict | None:
    """The full allocation for an ID prefix; None after printing a multiple-match table."""
    if len(alloc_ref) == 1:
        raise CommandError("Identifier must contain at least two characters." if not multiple_is_error
                           else "Alloc ID must contain at least two characters.")
    prefix = sanitize_uuid_prefix(alloc_ref)
    allocs = cmd.lookup_by_prefix("Error querying allocation", "/v1/allocations", prefix)
    if not allocs:
        raise CommandError(f"No allocation(s) with prefix or id {q(prefix)} found")
    if len(allocs) > 1:
        table = alloc_stub_table(allocs, bool(cmd.flags.values.get("verbose")), cmd.id_length, cmd.ctx.now())
        if multiple_is_error:
            raise CommandError(f"Prefix matched multiple allocations\n\n{table}")
        cmd.output(f"Prefix matched multiple allocations\n\n{table}")
        return None
    ns = allocs[0].get("Namespace") or "default"
    return cmd.query("Error querying allocation", f"/v1/allocation/{allocs[0]['ID']}", namespace=ns)


def task_group_of(alloc: dict) -> dict | None:
    for group in (alloc.get("Job") or {}).get("TaskGroups") or []:
        if group.get("Name") == alloc.get("TaskGroup"):
            return group
    return None


def lifecycle_name(lifecycle: dict | None) -> str:
    if not lifecycle or not lifecycle.get("Hook"):
        return "main"
    return lifecycle["Hook"] + (" sidecar" if lifecycle.get("Sidecar") else "")


class AllocStatusCommand(Command):
    name = "alloc status"
    synopsis = "Display allocation status information and metadata"
    help = """
Usage: yurt alloc status [options] <allocation>

  Display information about existing allocations and its tasks. This command can
  be used to inspect the current status of an allocation, including its running
  status, metadata, and verbose failure messages reported by internal
  subsystems.

{general}

Alloc Status Options:

  -short
    Display short output. Shows only the most recent task event.

  -stats
    Display detailed resource usage statistics.

  -verbose
    Show full information.

  -json
    Output the allocation in its JSON format.

  -t
    Format and display allocation using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("short", "verbose", "stats", "json", "ui"):
            self.flags.bool(name)
        self.flags.string("t")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        as_json, tmpl = self.flag("json"), self.flag("t")
        if not rest and (as_json or tmpl):
            allocs = self.query("Error querying allocations", "/v1/allocations")
            self.output(format_output(as_json, tmpl, allocs))
            return 0
        if len(rest) != 1:
            self.error("This command takes one of the following argument conditions:")
            self.error(" * A single <allocation>")
            return self.usage_error(" * No arguments, with output format specified")
        alloc = find_alloc(self, rest[0], multiple_is_error=False)
        if alloc is None:
            return 0
        if as_json or tmpl:
            self.output(format_output(as_json, tmpl, alloc))
            return 0
        if self.flag("short"):
            self.output(self._short_info(alloc))
            self._short_tasks(alloc)
        else:
            self.output(self._basic_info(alloc))
            self._network_info(alloc)
            stats = self._stats(alloc)
            self._task_details(alloc, stats)
        if self.flag("verbose"):
            self.output("\nPlacement Metrics")
            self.output(alloc_metrics(alloc.get("Metrics"), "  ", scores=True))
        return 0

    def _short_info(self, alloc: dict) -> str:
        now = self.ctx.now()
        return format_kv([
            f"ID|{alloc.get('ID', '')}",
            f"Name|{alloc.get('Name', '')}",
            f"Created|{pretty_nano_diff(alloc.get('CreateTime'), now)}",
            f"Modified|{pretty_nano_diff(alloc.get('ModifyTime'), now)}",
        ])

    def _basic_info(self, alloc: dict) -> str:
        length, now = self.id_length, self.ctx.now()
        if self.flag("verbose"):
            created, modified = format_unix_nano(alloc.get("CreateTime")), format_unix_nano(alloc.get("ModifyTime"))
        else:
            created = pretty_nano_diff(alloc.get("CreateTime"), now)
            modified = pretty_nano_diff(alloc.get("ModifyTime"), now)
        rows = [
            f"ID|{alloc.get('ID', '')}",
            f"Eval ID|{limit(alloc.get('EvalID', ''), length)}",
            f"Name|{alloc.get('Name', '')}",
            f"Node ID|{limit(alloc.get('NodeID', ''), length)}",
            f"Node Name|{alloc.get('NodeName', '')}",
            f"Job ID|{alloc.get('JobID', '')}",
            f"Job Version|{(alloc.get('Job') or {}).get('Version', alloc.get('JobVersion', 0))}",
            f"Client Status|{alloc.get('ClientStatus', '')}",
            f"Client Description|{alloc.get('ClientDescription', '')}",
            f"Desired Status|{alloc.get('DesiredStatus', '')}",
            f"Desired Description|{alloc.get('DesiredDescription', '')}",
            f"Created|{created}",
            f"Modified|{modified}",
        ]
        rows += self._deployment_rows(alloc)
        if alloc.get("NextAllocation"):
            rows.append(f"Replacement Alloc ID|{limit(alloc['NextAllocation'], length)}")
        if alloc.get("FollowupEvalID"):
            eligible = self._future_eval_time(alloc["FollowupEvalID"])
            if eligible:
                rows.append(f"Reschedule Eligibility|{eligible}")
        if self.flag("verbose"):
            m = alloc.get("Metrics") or {}
            rows += [
                f"Evaluated Nodes|{m.get('NodesEvaluated', 0)}",
                f"Filtered Nodes|{m.get('NodesFiltered', 0)}",
                f"Exhausted Nodes|{m.get('NodesExhausted', 0)}",
                f"Allocation Time|{go_duration(m.get('AllocationTime', 0) or 0)}",
                f"Failures|{m.get('CoalescedFailures', 0)}",
            ]
        return format_kv(rows)

    def _future_eval_time(self, eval_id: str) -> str:
        from .job_status import wait_until_seconds

        try:
            ev = self.client().get(f"/v1/evaluation/{eval_id}") or {}
        except Exception:  # noqa: BLE001 - Nomad leaves the row out
            return ""
        wait_until, now = wait_until_seconds(ev.get("WaitUntil")), self.ctx.now()
        return pretty_time_diff(wait_until, now) if wait_until and wait_until >= now else ""

    def _deployment_rows(self, alloc: dict) -> list[str]:
        if not alloc.get("DeploymentID"):
            return []
        status = alloc.get("DeploymentStatus") or {}
        healthy = status.get("Healthy")
        health = "unset" if healthy is None else ("healthy" if healthy else "unhealthy")
        rows = [f"Deployment ID|{limit(alloc['DeploymentID'], self.id_length)}", f"Deployment Health|{health}"]
        if status.get("Canary"):
            rows.append("Canary|true")
        return rows

    def _network_info(self, alloc: dict) -> None:
        shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
        networks = shared.get("Networks") or []
        if not networks:
            return
        net = networks[0]
        rows = ["Label|Dynamic|Address"]
        if shared.get("Ports"):
            ports = [(f"*{p.get('Label', '')}", p.get("Value", 0), p.get("To", 0), p.get("HostIP", ""))
                     for p in shared["Ports"]]
        else:
            ports = [(p.get("Label", ""), p.get("Value", 0), p.get("To", 0), net.get("IP", ""))
                     for p in [*(net.get("DynamicPorts") or []), *(net.get("ReservedPorts") or [])]]
        if not ports:
            return
        for label, value, to, ip in ports:
            rows.append(f"{label}|yes|{ip}:{value}" + (f" -> {to}" if to > 0 else ""))
        mode = f" (mode = {q(net['Mode'])})" if net.get("Mode") else ""
        self.output("")
        self.output(f"Allocation Addresses{mode}:\n{format_list(rows)}")

    def _stats(self, alloc: dict) -> dict | None:
        try:
            return self.client().get(f"/v1/client/allocation/{alloc['ID']}/stats")
        except Exception as exc:  # noqa: BLE001 - stats are optional, as in Nomad
            self.output("")
            self.error(f"Couldn't retrieve stats: {exc}")
            return None

    def _ordered_tasks(self, alloc: dict) -> tuple[list[str], dict[str, dict | None]]:
        lifecycles = {t.get("Name"): t.get("Lifecycle") for t in (task_group_of(alloc) or {}).get("Tasks") or []}
        names = sorted(alloc.get("TaskStates") or {})

        def rank(name: str) -> int:
            lc = lifecycles.get(name)
            if not lc:
                return 2
            return 1 if lc.get("Sidecar") else 0

        return sorted(names, key=rank), lifecycles

    def _task_details(self, alloc: dict, stats: dict | None) -> None:
        names, lifecycles = self._ordered_tasks(alloc)
        for name in names:
            state = alloc["TaskStates"][name]
            lc = lifecycles.get(name)
            indicator = f" ({lifecycle_name(lc)})" if lc and lc.get("Hook") else ""
            self.output(f"\nTask {q(name)}{indicator} is {q(state.get('State', ''))}")
            self._task_resources(alloc, name, stats)
            self.output("")
            self._task_events(state)

    def _task_resources(self, alloc: dict, task: str, stats: dict | None) -> None:
        ar = alloc.get("AllocatedResources") or {}
        res = (ar.get("Tasks") or {}).get(task)
        if res is None:
            return
        cpu = cpu_shares(res.get("Cpu"))
        mem_info = res.get("Memory") or {}
        mem, mem_max = mem_info.get("MemoryMB", 0), mem_info.get("MemoryMaxMB", 0)
        disk = (ar.get("Shared") or {}).get("DiskMB", 0)
        addrs = [f"{p.get('Label', '')}: {net.get('IP', '')}:{p.get('Value', 0)}"
                 for net in res.get("Networks") or [] for p in [*(net.get("DynamicPorts") or []), *(net.get("ReservedPorts") or [])]]
        cpu_text, mem_text = str(cpu), ibytes(mem * MB)
        usage = (((stats or {}).get("Tasks") or {}).get(task) or {}).get("ResourceUsage") or {}
        if usage.get("CpuStats"):
            cpu_text = f"{math.floor(usage['CpuStats'].get('TotalTicks', 0))}/{cpu_text}"
        if usage.get("MemoryStats"):
            ms = usage["MemoryStats"]
            used = ms.get("RSS") or (ms.get("Usage", 0) if "RSS" not in (ms.get("Measured") or []) else 0)
            mem_text = f"{ibytes(used)}/{mem_text}"
        cores = (res.get("Cpu") or {}).get("ReservedCores") or []
        header = f"CPU ({len(cores)} cores)" if cores else "CPU"
        rows = [f"{header}|Memory|Disk|Addresses",
                f"{cpu_text} MHz|{mem_text}|{ibytes(disk * MB)}|{addrs[0] if addrs else ''}"]
        max_text = f"Max: {ibytes(mem_max * MB)}" if mem_max and mem_max != mem else ""
        if max_text or len(addrs) > 1:
            rows.append(f"|{max_text}||{addrs[1] if len(addrs) > 1 else ''}")
        rows += [f"|||{a}" for a in addrs[2:]]
        self.output("Task Resources:")
        self.output(format_list_with_spaces(rows))
        if usage and self.flag("stats"):
            self.output("")
            self._verbose_usage(usage)

    def _verbose_usage(self, usage: dict) -> None:
        """`-stats`: every measured memory and CPU figure, as Nomad prints them."""
        memory = usage.get("MemoryStats") or {}
        memory_keys = {"RSS": "RSS", "Cache": "Cache", "Swap": "Swap", "Usage": "Usage", "Max Usage": "MaxUsage",
                       "Kernel Usage": "KernelUsage", "Kernel Max Usage": "KernelMaxUsage"}
        measured = sorted(memory.get("Measured") or [])
        if measured:
            values = [ibytes(memory.get(memory_keys.get(m, m), 0) or 0) for m in measured]
            self.output("Memory Stats")
            self.output(format_list(["|".join(measured), "|".join(values)]))
            self.output("")
        cpu = usage.get("CpuStats") or {}
        measured = sorted(cpu.get("Measured") or [])
        if measured:
            percent = {"Percent": "Percent", "User Mode": "UserMode", "System Mode": "SystemMode"}
            counts = {"Throttled Periods": "ThrottledPeriods", "Throttled Time": "ThrottledTime"}
            values = [f"{cpu.get(percent[m], 0) or 0:.2f}%" if m in percent else str(cpu.get(counts.get(m, m), 0))
                      for m in measured]
            self.output("CPU Stats")
            self.output(format_list(["|".join(measured), "|".join(values)]))

    def _task_events(self, state: dict) -> None:
        self.output("Task Events:")
        self.output(format_kv([
            f"Started At|{format_time_string(state.get('StartedAt'), 'N/A')}",
            f"Finished At|{format_time_string(state.get('FinishedAt'), 'N/A')}",
            f"Total Restarts|{state.get('Restarts', 0)}",
            f"Last Restart|{format_time_string(state.get('LastRestart'), 'N/A')}",
        ]))
        self.output("")
        self.output("Recent Events:")
        rows = ["Time|Type|Description"]
        for event in reversed(state.get("Events") or []):
            message = event.get("DisplayMessage") or display_message(event)
            rows.append(f"{format_unix_nano(event.get('Time'))}|{event.get('Type', '')}|{message}")
        self.output(format_list(rows))

    def _short_tasks(self, alloc: dict) -> None:
        names, lifecycles = self._ordered_tasks(alloc)
        rows = ["Name|State|Last Event|Time|Lifecycle"]
        for name in names:
            state = alloc["TaskStates"][name]
            events = state.get("Events") or []
            last_type = events[-1].get("Type", "") if events else ""
            last_time = format_unix_nano(events[-1].get("Time")) if events else ""
            rows.append(f"{name}|{state.get('State', '')}|{last_type}|{last_time}|{lifecycle_name(lifecycles.get(name))}")
        self.output("\nTasks")
        self.output(format_list(rows))


def display_message(event: dict) -> str:
    """Nomad's `buildDisplayMessage` for events without a DisplayMessage."""
    kind = event.get("Type", "")
    fixed = {"Started": "Task started by client", "Received": "Task received by client",
             "Downloading Artifacts": "Client is downloading artifacts", "Leader Task Dead": "Leader Task in Group dead",
             "Reconnected": "Client reconnected"}
    if kind in fixed:
        return fixed[kind]
    fallback = {"Failed Validation": ("ValidationError", "Validation of task failed"),
                "Setup Failure": ("SetupError", "Task setup failed"),
                "Driver Failure": ("DriverError", "Failed to start task"),
                "Failed Artifact Download": ("DownloadError", "Failed to download artifacts"),
                "Killed": ("KillError", "Task successfully killed"),
                "Not Restarting": ("RestartReason", "Task exceeded restart policy"),
                "Restart Signaled": ("RestartReason", "Task signaled to restart")}
    if kind in fallback:
        key, default = fallback[kind]
        return event.get(key) or default
    if kind == "Terminated":
        parts = [f"Exit Code: {event.get('ExitCode', 0)}"]
        if event.get("Signal"):
            parts.append(f"Signal: {event['Signal']}")
        if event.get("Message"):
            parts.append(f"Exit Message: {q(event['Message'])}")
        return ", ".join(parts)
    if kind == "Killing":
        if event.get("KillReason"):
            return f"Killing task: {event['KillReason']}"
        if event.get("KillTimeout"):
            return f"Sent interrupt. Waiting {go_duration(event['KillTimeout'])} before force killing"
        return "Sent interrupt"
    if kind == "Restarting":
        text = f"Task restarting in {go_duration(event.get('StartDelay', 0) or 0)}"
        reason = event.get("RestartReason", "")
        return f"{reason} - {text}" if reason and reason != "Restart within policy" else text
    if kind == "Sibling Task Failed":
        sib = event.get("FailedSibling")
        return f"Task's sibling {q(sib)} failed" if sib else "Task's sibling failed"
    if kind == "Driver":
        return event.get("DriverMessage", "")
    return event.get("Message", "")
