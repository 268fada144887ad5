"""`node drain` (with Nomad's drain monitor) and `node eligibility`."""

import threading
from dataclasses import dataclass, field

import httpx

from yurt.api import APIError
from yurt.structs.durations import parse_duration

from .command import Command, CommandError, sanitize_uuid_prefix
from .format import format_seconds, q
from .node_status import NodeStatusCommand, node_stub_table

DEFAULT_DRAIN_DEADLINE = 3600 * 10**9  # one hour, in ns
MONITOR_WAIT = "5s"


def find_node(cmd: Command, node_id: str, what: str) -> dict:
    """The full node for an ID or unique prefix (`-self`: the local client's node)."""
    if not node_id:
        node_id = NodeStatusCommand._local_node_id(cmd)
    if len(node_id) == 1:
        raise CommandError("Identifier must contain at least two characters.")
    node_id = sanitize_uuid_prefix(node_id)
    nodes = cmd.lookup_by_prefix(what, "/v1/nodes", node_id)
    if not nodes:
        raise CommandError(f"No node(s) with prefix or id {q(node_id)} found")
    if len(nodes) > 1:
        raise CommandError(f"Prefix matched multiple nodes\n\n{node_stub_table(nodes, True)}")
    node = cmd.query(what, f"/v1/node/{nodes[0]['ID']}")
    node["_Prefix"] = node_id
    return node


def _node_arg(cmd: Command, rest: list[str]) -> str | None:
    """The node argument; None after printing Nomad's usage error."""
    if (cmd.flag("self") and rest) or (not cmd.flag("self") and len(rest) != 1):
        cmd.usage_error("Node ID must be specified if -self isn't being used")
        return None
    return rest[0] if rest else ""


class NodeEligibilityCommand(Command):
    name = "node eligibility"
    synopsis = "Toggle scheduling eligibility for a given node"
    help = """
Usage: yurt node eligibility [options] <node>

  Toggles the nodes scheduling eligibility. When a node is marked as ineligible,
  no new allocations will be placed on it but existing allocations will remain.
  To remove existing allocations, use the node drain command.

  It is required that either -enable or -disable is specified, but not both.
  The -self flag is useful to set the scheduling eligibility of the local node.

{general}

Node Eligibility Options:

  -disable
    Mark the specified node as ineligible for new allocations.

  -enable
    Mark the specified node as eligible for new allocations.

  -self
    Set the eligibility of the local node.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("enable").bool("disable").bool("self")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        enable, disable = self.flag("enable"), self.flag("disable")
        if enable == disable:
            return self.usage_error("Either the '-enable' or '-disable' flag must be set")
        node_id = _node_arg(self, rest)
        if node_id is None:
            return 1
        what = "Error updating scheduling eligibility"
        node = find_node(self, node_id, what)
        body = {"NodeID": node["ID"], "Eligibility": "eligible" if enable else "ineligible"}
        self.call(what, "POST", f"/v1/node/{node['ID']}/eligibility", body)
        state = "eligible" if enable else "ineligible"
        self.output(f"Node {q(node['ID'])} scheduling eligibility set: {state} for scheduling")
        return 0


class NodeDrainCommand(Command):
    name = "node drain"
    synopsis = "Toggle drain mode on a given node"
    help = """
Usage: yurt node drain [options] <node>

  Toggles node draining on a specified node. It is required that either
  -enable or -disable is specified, but not both.  The -self flag is useful to
  drain the local node.

{general}

Node Drain Options:

  -disable
    Disable draining for the specified node.

  -enable
    Enable draining for the specified node.

  -deadline <duration>
    Set the deadline by which all allocations must be moved off the node.
    Remaining allocations after the deadline are forced removed from the node.
    If unspecified, a default deadline of one hour is applied.

  -detach
    Return immediately instead of entering monitor mode.

  -monitor
    Enter monitor mode directly without modifying the drain status.

  -force
    Force remove allocations off the node immediately.

  -no-deadline
    No deadline allows the allocations to drain off the node without being force
    stopped after a certain deadline.

  -ignore-system
    Ignore system allows the drain to complete without stopping system job
    allocations. By default system jobs are stopped last.

  -keep-ineligible
    Keep ineligible will maintain the node's scheduling ineligibility even if
    the drain is being disabled. This is useful when an existing drain is being
    cancelled but additional scheduling on the node is not desired.

  -m
    Message for the drain update operation. Registered in drain metadata as
    "message" during drain enable and "cancel_message" during drain disable.

  -meta <key>=<value>
    Custom metadata to store on the drain operation, can be used multiple times.

  -self
    Set the drain status of the local node.

  -yes
    Automatic yes to prompts.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("enable", "disable", "detach", "force", "no-deadline", "ignore-system",
                     "keep-ineligible", "self", "yes", "monitor"):
            self.flags.bool(name)
        self.flags.string("deadline").string("m").list("meta")

    def _check_flags(self, rest: list[str]) -> str | None:
        """Nomad's flag rules; the node argument, or None after printing the error."""
        enable, disable, monitor = self.flag("enable"), self.flag("disable"), self.flag("monitor")
        if monitor and (enable or disable):
            self.usage_error("The -monitor flag cannot be used with the '-enable' or '-disable' flags")
            return None
        if (enable and disable) or not (monitor or enable or disable):
            self.usage_error("Either the '-enable' or '-disable' flag must be set, unless using '-monitor'")
            return None
        node_id = _node_arg(self, rest)
        if node_id is None:
            return None
        deadline, force, no_deadline = self.flag("deadline"), self.flag("force"), self.flag("no-deadline")
        if disable and (deadline or force or no_deadline or self.flag("ignore-system")):
            self.usage_error("-disable can't be combined with flags configuring drain strategy")
            return None
        if deadline and (force or no_deadline):
            self.usage_error("-deadline can't be combined with -force or -no-deadline")
            return None
        if force and no_deadline:
            self.usage_error("-force and -no-deadline are mutually exclusive")
            return None
        return node_id

    def _deadline(self) -> int:
        if self.flag("force"):
            return -10**9
        if self.flag("no-deadline"):
            return 0
        text = self.flag("deadline")
        if not text:
            return DEFAULT_DRAIN_DEADLINE
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise CommandError(f"Failed to parse deadline {q(text)}: {exc}") from None
        if value <= 0:
            raise CommandError("A positive drain duration must be given")
        return value

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        node_id = self._check_flags(rest)
        if node_id is None:
            return 1
        deadline = self._deadline()
        node = find_node(self, node_id, "Error toggling drain mode")
        if self.flag("monitor"):
            if not node.get("DrainStrategy"):
                self.error("No drain strategy set")
                return 0
            self.output(f"{self._stamp()}: Monitoring node {q(node['ID'])}: Ctrl-C to detach monitoring")
            return DrainMonitor(self, node["ID"], self.flag("ignore-system")).run(self._node_index(node))
        enable = self.flag("enable")
        if node["_Prefix"] != node["ID"] and not self.flag("yes"):
            code, confirmed = self._confirm(node["ID"], enable)
            if not confirmed:
                return code
        body = {
            "NodeID": node["ID"],
            "DrainSpec": {"Deadline": deadline, "IgnoreSystemJobs": self.flag("ignore-system")} if enable else None,
            "MarkEligible": not self.flag("keep-ineligible"),
            "Meta": self._meta(node, enable),
        }
        monitor = DrainMonitor(self, node["ID"], self.flag("ignore-system"))
        watching = enable and not self.flag("detach")
        alloc_index = monitor.prime() if watching else 0  # so no early "marked for migration" is missed
        _, index = self._drain(node["ID"], body)
        if not watching:
            self.output(f"Node {q(node['ID'])} drain strategy {'set' if enable else 'unset'}")
            return 0
        self.output(f"{self._stamp()}: Ctrl-C to stop monitoring: will not cancel the node drain")
        self.output(f"{self._stamp()}: Node {q(node['ID'])} drain strategy set")
        return monitor.run(index, alloc_index)

    def _drain(self, node_id: str, body: dict) -> tuple[dict, int]:
        try:
            data, meta = self.client().request("POST", f"/v1/node/{node_id}/drain", None, body)
        except (APIError, httpx.HTTPError) as exc:
            raise CommandError(f"Error updating drain specification: {exc}") from exc
        return data, (data or {}).get("Index") or meta.last_index or 0

    @staticmethod
    def _node_index(node: dict) -> int:
        return node.get("ModifyIndex", 0) or 0

    def _meta(self, node: dict, enable: bool) -> dict[str, str]:
        meta: dict[str, str] = {}
        if not enable and node.get("LastDrain") and (node["LastDrain"].get("Meta")):
            meta = dict(node["LastDrain"]["Meta"])
        if self.flag("m"):
            meta["message" if enable else "cancel_message"] = self.flag("m")
        for item in self.flag("meta") or ():
            if item:
                key, _, value = item.partition("=")
                meta[key] = value
        return meta

    def _confirm(self, node_id: str, enable: bool) -> tuple[int, bool]:
        verb = "enable" if enable else "disable"
        return self.confirm(f"Are you sure you want to {verb} drain mode for node {q(node_id)}? [y/N]",
                            "Canceling drain toggle")

    def _stamp(self) -> str:
        return format_seconds(self.ctx.now())


@dataclass
class DrainMonitor:
    """Nomad's `Nodes().MonitorDrain`: node and alloc changes as lines, until the drain
    is complete and every (non-ignored) alloc on the node has stopped."""

    cmd: Command
    node_id: str
    ignore_system: bool
    seen: dict[str, dict] = field(default_factory=dict)
    last_strategy: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prime(self) -> int:
        """Read the node's allocs once before the drain starts; returns their index."""
        allocs, index = self._get(f"/v1/node/{self.node_id}/allocations", 0)
        self.seen = {a["ID"]: a for a in allocs or []}
        return index

    def run(self, node_index: int, alloc_index: int = 0) -> int:
        """Watch the node and its allocs side by side (two blocking loops, as Nomad's two
        goroutines) until both are done; an error ends the monitor."""
        failures: list[CommandError] = []

        def loop(step, index, *args):
            try:
                done = False
                while not done and not failures:
                    done, index = step(index, *args)
            except CommandError as exc:
                failures.append(exc)

        watchers = [threading.Thread(target=loop, args=(self._watch_node, node_index), daemon=True),
                    threading.Thread(target=loop, args=(self._watch_allocs, alloc_index), daemon=True)]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
        if failures:
            raise failures[0]
        return 0

    def _get(self, path: str, index: int) -> tuple[object, int]:
        params = {"index": index, "wait": MONITOR_WAIT} if index else {}
        data, meta = self.cmd.client().request("GET", path, params, None)
        return data, meta.last_index or index

    def _line(self, text: str, warn: bool = False) -> None:
        line = f"{format_seconds(self.cmd.ctx.now())}: {text}"
        with self.lock:
            self.cmd.error(line) if warn else self.cmd.output(line)

    def _watch_node(self, index: int) -> tuple[bool, int]:
        try:
            node, index = self._get(f"/v1/node/{self.node_id}", index)
        except (APIError, httpx.HTTPError) as exc:
            raise CommandError(f"{format_seconds(self.cmd.ctx.now())}: Error monitoring node: {exc}") from exc
        strategy = node.get("DrainStrategy")
        if not strategy:
            self._line(f"Drain complete for node {self.node_id}")
            return True, index
        if node.get("Status") == "down":
            self._line(f"Node {q(self.node_id)} down", warn=True)
        if self.last_strategy is not None and _strategy_key(strategy) != _strategy_key(self.last_strategy):
            self._line(f"Node {q(self.node_id)} drain updated: {_strategy_text(strategy)}")
        self.last_strategy = strategy
        return False, index

    def _watch_allocs(self, index: int) -> tuple[bool, int]:
        try:
            allocs, index = self._get(f"/v1/node/{self.node_id}/allocations", index)
        except (APIError, httpx.HTTPError) as exc:
            raise CommandError(f"{format_seconds(self.cmd.ctx.now())}: Error monitoring allocations: {exc}") from exc
        running = 0
        for alloc in sorted(allocs or [], key=lambda a: (a.get("CreateIndex", 0), a["ID"])):
            orig = self.seen.get(alloc["ID"])
            self.seen[alloc["ID"]] = alloc
            message = "" if orig is None else _alloc_change(orig, alloc)  # new ones: no line
            if message:
                self._line(f"Alloc {q(alloc['ID'])} {message}")
            job_type = (alloc.get("Job") or {}).get("Type")
            if job_type is None or (self.ignore_system and job_type == "system"):
                continue
            if alloc.get("ClientStatus") in ("pending", "running"):
                running += 1
        if running == 0:
            self._line(f"All allocations on node {q(self.node_id)} have stopped")
            return True, index
        return False, index


def _alloc_change(orig: dict, alloc: dict) -> str:
    migrating = bool((alloc.get("DesiredTransition") or {}).get("Migrate"))
    if orig.get("ClientStatus") != alloc.get("ClientStatus"):
        return f"status {orig.get('ClientStatus')} -> {alloc.get('ClientStatus')}"
    if migrating and not (orig.get("DesiredTransition") or {}).get("Migrate"):
        return "marked for migration"
    if migrating and orig.get("DesiredStatus") != alloc.get("DesiredStatus") and alloc.get("DesiredStatus") == "stop":
        return "draining"
    return ""


def _strategy_key(strategy: dict) -> tuple:
    return strategy.get("ForceDeadline"), strategy.get("Deadline"), strategy.get("IgnoreSystemJobs")


def _strategy_text(strategy: dict) -> str:
    if strategy.get("IgnoreSystemJobs"):
        return f"drain ignoring system jobs and deadline at {strategy.get('ForceDeadline', '')}"
    return f"drain with deadline at {strategy.get('ForceDeadline', '')}"
