"""`node status`: the node list, or one node's details, resources and allocations."""

import math

from .command import Command, CommandError, sanitize_uuid_prefix
from .format import format_kv, format_list, format_output, format_time_string, go_duration, ibytes, limit, q
from .job_tables import alloc_list_table, cpu_shares

MB = 1024 * 1024


def _go_bool(value: object) -> str:
    return "true" if value else "false"


def node_stub_table(nodes: list[dict], verbose: bool) -> str:
    length = 36 if verbose else 8
    rows = ["ID|DC|Name|Class|Drain|Eligibility|Status"]
    for n in nodes:
        rows.append("|".join([limit(n.get("ID", ""), length), n.get("Datacenter", ""), n.get("Name", ""),
                              n.get("NodeClass", ""), _go_bool(n.get("Drain")),
                              n.get("SchedulingEligibility", ""), n.get("Status", "")]))
    return format_list(rows)


def format_drain(node: dict) -> str:
    strategy = node.get("DrainStrategy")
    if not strategy:
        return _go_bool(node.get("Drain"))
    text = "true"
    deadline = strategy.get("Deadline", 0) or 0
    force = format_time_string(strategy.get("ForceDeadline"))
    if deadline < 0:
        text += "; force drain"
    elif not force:
        text += "; no deadline"
    else:
        text += f"; {force} deadline"
    if strategy.get("IgnoreSystemJobs"):
        text += "; ignoring system jobs"
    return text


def _alloc_usage(alloc: dict) -> tuple[int, int, int]:
    ar = alloc.get("AllocatedResources") or {}
    tasks = (ar.get("Tasks") or {}).values()
    cpu = sum(cpu_shares(t.get("Cpu")) for t in tasks)
    mem = sum((t.get("Memory") or {}).get("MemoryMB", 0) for t in tasks)
    return cpu, mem, (ar.get("Shared") or {}).get("DiskMB", 0)


def node_total(node: dict, kind: str) -> int:
    """Node capacity minus the reserved part, for `Cpu` (MHz), `Memory` or `Disk` (MB)."""
    res = (node.get("NodeResources") or {}).get(kind) or {}
    reserved = (node.get("ReservedResources") or {}).get(kind) or {}
    if kind == "Cpu":
        return cpu_shares(res) - cpu_shares(reserved)
    key = f"{kind}MB"
    return (res.get(key, 0) or 0) - (reserved.get(key, 0) or 0)


def host_resources(node: dict, stats: dict) -> list[str]:
    """Nomad's `getHostResources`: host CPU ticks, memory and the data-dir disk."""
    device = (node.get("Attributes") or {}).get("unique.storage.volume", "")
    disk = next((d for d in stats.get("DiskStats") or [] if d.get("Device") == device), None)
    memory = stats.get("Memory") or {}
    cpu = math.floor(stats.get("CPUTicksConsumed", 0) or 0)
    node_cpu = cpu_shares((node.get("NodeResources") or {}).get("Cpu"))
    head = f"{cpu}/{node_cpu} MHz|{ibytes(memory.get('Used', 0))}/{ibytes(memory.get('Total', 0))}"
    disk_text = f"{ibytes(disk.get('Used', 0))}/{ibytes(disk.get('Size', 0))}" if disk else f"({device})"
    return ["CPU|Memory|Disk", f"{head}|{disk_text}"]


def percent(value: float | None) -> str:
    """go-humanize's FormatFloat("#,###.##", v) with a % sign: 1,234.50%."""
    return f"{float(value or 0):,.2f}%"


def host_stats_blocks(stats: dict) -> list[tuple[str, list[list[str]]]]:
    """`node status -stats`: per-CPU, memory and per-disk figures, as Nomad prints them."""
    cpus = [[f"CPU|{c.get('CPU', '')}", f"User|{percent(c.get('User'))}", f"System|{percent(c.get('System'))}",
             f"Idle|{percent(c.get('Idle'))}"] for c in stats.get("CPU") or []]
    mem = stats.get("Memory") or {}
    memory = [[f"{k}|{ibytes(int(mem.get(k, 0) or 0))}" for k in ("Total", "Available", "Used", "Free")]]
    disks = [[f"Device|{d.get('Device', '')}", f"MountPoint|{d.get('Mountpoint', '')}",
              f"Size|{ibytes(int(d.get('Size', 0) or 0))}", f"Used|{ibytes(int(d.get('Used', 0) or 0))}",
              f"Available|{ibytes(int(d.get('Available', 0) or 0))}", f"Used Percent|{percent(d.get('UsedPercent'))}",
              f"Inodes Percent|{percent(d.get('InodesUsedPercent'))}"] for d in stats.get("DiskStats") or []]
    return [("CPU Stats", cpus), ("Memory Stats", memory), ("Disk Stats", disks)]


def allocated_resources(node: dict, running: list[dict]) -> list[str]:
    def total(kind: str, _key: str) -> int:
        return node_total(node, kind)

    used = [sum(x) for x in zip(*(_alloc_usage(a) for a in running))] if running else [0, 0, 0]
    count = str(len(running))
    if node.get("NodeMaxAllocs"):
        count = f"{len(running)}/{node['NodeMaxAllocs']}"
    return [
        "CPU|Memory|Disk|Alloc Count",
        f"{used[0]}/{total('Cpu', 'CpuShares')} MHz|{ibytes(used[1] * MB)}/{ibytes(total('Memory', 'MemoryMB') * MB)}"
        f"|{ibytes(used[2] * MB)}/{ibytes(total('Disk', 'DiskMB') * MB)}|{count}",
    ]


class NodeStatusCommand(Command):
    name = "node status"
    synopsis = "Display status information about nodes"
    help = """
Usage: yurt node status [options] <node>

  Display status information about a given node. The list of nodes returned
  includes only nodes which jobs may be scheduled to, and includes status and
  other high-level information.

  If a node ID is passed, information for that specific node will be displayed,
  including resource usage statistics. If no node ID's are passed, then a
  short-hand list of all nodes will be displayed. The -self flag is useful to
  quickly access the status of the local node.

{general}

Node Status Options:

  -self
    Query the status of the local node.

  -allocs
    Display a count of running allocations for each node.

  -short
    Display short output. Used only when a single node is being queried.

  -verbose
    Display full information.

  -json
    Output the node in its JSON format.

  -t
    Format and display node using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("short", "os", "quiet", "verbose", "allocs", "self", "stats", "json", "ui"):
            self.flags.bool(name)
        self.flags.string("t").string("filter").int("per-page").string("page-token")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) > 1:
            return self.usage_error("This command takes either one or no arguments")
        if not rest and not self.flag("self"):
            return self._list()
        node_id = rest[0] if rest else self._local_node_id()
        if len(node_id) == 1:
            raise CommandError("Identifier must contain at least two characters.")
        prefix = sanitize_uuid_prefix(node_id)
        nodes = self.lookup_by_prefix("Error querying node info", "/v1/nodes", prefix)
        if not nodes:
            raise CommandError(f"No node(s) with prefix {q(prefix)} found")
        if len(nodes) > 1:
            raise CommandError(f"Prefix matched multiple nodes\n\n{node_stub_table(nodes, self.flag('verbose'))}")
        node = self.query("Error querying node info", f"/v1/node/{nodes[0]['ID']}")
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), node))
            return 0
        return self._detail(node)

    def _local_node_id(self) -> str:
        info = self.query("Error querying agent info", "/v1/agent/self") or {}
        client = (info.get("stats") or info.get("Stats") or {}).get("client")
        if not client:
            raise CommandError("Nomad not running in client mode")
        if not client.get("node_id"):
            raise CommandError("Failed to determine node ID")
        return client["node_id"]

    def _list(self) -> int:
        if self.flag("quiet") and (self.flag("verbose") or self.flag("json")):
            raise CommandError("-quiet cannot be used with -verbose or -json")
        params = {"filter": self.flag("filter") or None, "os": True if self.flag("os") else None}
        nodes = self.query("Error querying node status", "/v1/nodes", **params) or []
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), nodes))
            return 0
        if not nodes:
            self.output("No nodes registered")
            return 0
        if self.flag("quiet"):
            self.output(format_list([n["ID"] for n in nodes]))
            return 0
        header = "ID|Node Pool|DC|Name|Class|" + ("OS|" if self.flag("os") else "")
        header += ("Address|Version|" if self.flag("verbose") else "") + "Drain|Eligibility|Status"
        header += "|Running Allocs" if self.flag("allocs") else ""
        rows = [header]
        for n in nodes:
            cells = [limit(n.get("ID", ""), self.id_length), n.get("NodePool", ""), n.get("Datacenter", ""),
                     n.get("Name", ""), n.get("NodeClass", "")]
            if self.flag("os"):
                cells.append((n.get("Attributes") or {}).get("os.name", ""))
            if self.flag("verbose"):
                cells += [n.get("Address", ""), n.get("Version", "")]
            cells += [_go_bool(n.get("Drain")), n.get("SchedulingEligibility", ""), n.get("Status", "")]
            if self.flag("allocs"):
                allocs = self.query("Error querying node allocations", f"/v1/node/{n['ID']}/allocations") or []
                cells.append(str(sum(1 for a in allocs if a.get("ClientStatus") == "running")))
            rows.append("|".join(cells))
        self.output(format_list(rows))
        return 0

    def _detail(self, node: dict) -> int:
        allocs = self.query("Error querying node allocations", f"/v1/node/{node['ID']}/allocations") or []
        running = [a for a in allocs if a.get("ClientStatus") == "running"]
        rows = [
            f"ID|{node.get('ID', '')}", f"Name|{node.get('Name', '')}", f"Node Pool|{node.get('NodePool', '')}",
            f"Class|{node.get('NodeClass', '')}", f"DC|{node.get('Datacenter', '')}", f"Drain|{format_drain(node)}",
            f"Eligibility|{node.get('SchedulingEligibility', '')}", f"Status|{node.get('Status', '')}",
            "CSI Controllers|", "CSI Drivers|",
        ]
        volumes = ",".join(sorted(node.get("HostVolumes") or {}))
        networks = ",".join(sorted((node.get("HostNetworks") or {})))
        if self.flag("short"):
            rows += [f"Host Volumes|{volumes}", f"Host Networks|{networks}", "CSI Volumes|",
                     f"Drivers|{','.join(self._drivers(node, healthy_only=True))}"]
            self.output(format_kv(rows))
            self._allocations(node, allocs)
            return 0
        stats = self._host_stats(node)
        if stats and stats.get("Uptime") is not None:
            rows.append(f"Uptime|{go_duration(int(stats['Uptime']) * 1_000_000_000)}")
        if not self.flag("verbose"):
            rows += [f"Host Volumes|{volumes}", f"Host Networks|{networks}", "CSI Volumes|",
                     f"Driver Status|{','.join(self._drivers(node, healthy_only=False))}"]
        self.output(format_kv(rows))
        if self.flag("verbose"):
            self._driver_table(node)
        self._events(node)
        self.output("\nAllocated Resources")
        self.output(format_list(allocated_resources(node, running)))
        self._utilization(node, running, stats)
        self._allocations(node, allocs)
        return 0

    def _utilization(self, node: dict, running: list[dict], stats: dict | None) -> None:
        actual = self._alloc_usage(node, running)
        if actual:
            self.output("\nAllocation Resource Utilization")
            self.output(format_list(actual))
        if stats is None:
            self.output("")
            self.error("error fetching node stats: actual resource usage not present")
            return
        self.output("\nHost Resource Utilization")
        self.output(format_list(host_resources(node, stats)))
        if self.flag("stats"):
            for title, blocks in host_stats_blocks(stats):
                self.output(f"\n{title}")
                self.output("\n\n".join(format_kv(rows) for rows in blocks))

    def _alloc_usage(self, node: dict, running: list[dict]) -> list[str] | None:
        cpu, mem = 0.0, 0
        for alloc in running:
            try:
                usage = (self.client().get(f"/v1/client/allocation/{alloc['ID']}/stats") or {}).get("ResourceUsage") or {}
            except Exception:  # noqa: BLE001 - Nomad leaves the table out when any alloc's stats are missing
                return None
            cpu += (usage.get("CpuStats") or {}).get("TotalTicks", 0) or 0
            memory = usage.get("MemoryStats") or {}
            mem += memory.get("Usage") or memory.get("RSS") or 0
        total_cpu = node_total(node, "Cpu")
        total_mem = node_total(node, "Memory")
        return ["CPU|Memory", f"{math.floor(cpu)}/{total_cpu} MHz|{ibytes(int(mem))}/{ibytes(total_mem * MB)}"]

    def _host_stats(self, node: dict) -> dict | None:
        try:
            return self.client().get("/v1/client/stats", node_id=node["ID"])
        except Exception as exc:  # noqa: BLE001 - host stats are optional, as in Nomad
            self.output("")
            self.error(f"error fetching node stats: {exc}")
            return None

    @staticmethod
    def _drivers(node: dict, healthy_only: bool) -> list[str]:
        out = []
        for name, info in sorted((node.get("Drivers") or {}).items()):
            if healthy_only:
                if info.get("Detected") and info.get("Healthy"):
                    out.append(name)
            elif info.get("Detected"):
                out.append(name if info.get("Healthy") else f"{name} (unhealthy)")
        return out

    def _driver_table(self, node: dict) -> None:
        rows = ["Driver|Detected|Healthy|Message|Time"]
        for name, info in sorted((node.get("Drivers") or {}).items()):
            rows.append(f"{name}|{_go_bool(info.get('Detected'))}|{_go_bool(info.get('Healthy'))}|"
                        f"{info.get('HealthDescription', '')}|{format_time_string(info.get('UpdateTime'))}")
        self.output("\nDrivers")
        self.output(format_list(rows))

    def _events(self, node: dict) -> None:
        verbose = self.flag("verbose")
        rows = ["Time|Subsystem|Message|Details" if verbose else "Time|Subsystem|Message"]
        for event in reversed(node.get("Events") or []):
            details = event.get("Details") or {}
            subsystem = f"Driver: {details['driver']}" if details.get("driver") else event.get("Subsystem", "")
            cells = [format_time_string(event.get("Timestamp")), subsystem, event.get("Message", "")]
            if verbose:
                cells.append(", ".join(f"{k}: {v}" for k, v in sorted(details.items())))
            rows.append("|".join(cells))
        self.output("\nNode Events")
        self.output(format_list(rows))

    def _allocations(self, node: dict, allocs: list[dict]) -> None:
        self.output("\nAllocations")
        self.output(alloc_list_table(allocs, bool(self.flag("verbose")), self.id_length, self.ctx.now()))
        if self.flag("verbose"):
            attrs = node.get("Attributes") or {}
            self.output("\nAttributes")
            self.output(format_kv([f"{k}|{attrs[k]}" for k in sorted(attrs)]))
            meta = node.get("Meta") or {}
            self.output("\nMeta")
            self.output(format_kv([f"{k}|{meta[k]}" for k in sorted(meta)]))
