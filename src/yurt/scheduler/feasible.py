"""Feasibility: which nodes may run a task group at all, before resources are counted.

`ready_nodes` picks the candidate set once per evaluation (status, eligibility,
drain, datacenters, node pool). `GroupChecker` then checks job and group constraints
and drivers, caching the answer per computed node class, and checks the per-node
("escaped") constraints and distinct_hosts / distinct_property against the plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from yurt.structs import Constraint, Job, Node, TaskGroup
from yurt.structs.node import NODE_ELIGIBLE, NODE_STATUS_READY

from .constraints import (
    OP_DISTINCT_HOSTS,
    OP_DISTINCT_PROPERTY,
    PLACEMENT_OPERATORS,
    constraint_is_escaped,
    constraint_matches,
    constraint_text,
    resolve_target,
)
from .node_class import class_of

REASON_MISSING_DRIVERS = "missing drivers"
REASON_MISSING_HOST_VOLUMES = "missing compatible host volumes"


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")


def datacenter_matches(datacenters: list[str] | None, dc: str) -> bool:
    """Nomad's datacenter globs: only `*` is special; no datacenters means `*`."""
    if not datacenters:
        return True
    return any(p == dc or _glob(p).match(dc) for p in datacenters)


def pool_matches(job_pool: str, node_pool: str) -> bool:
    return job_pool == "all" or (job_pool or "default") == (node_pool or "default")


@dataclass
class CandidateNodes:
    """The nodes an evaluation may use, and why the others were left out."""

    nodes: list[Node]
    total: int = 0
    not_ready: int = 0
    ineligible: int = 0
    draining: int = 0
    wrong_datacenter: int = 0
    wrong_pool: int = 0
    by_datacenter: dict[str, int] = field(default_factory=dict)
    in_pool: int = 0
    datacenters: list[str] = field(default_factory=list)
    pool: str = "default"


def ready_nodes(all_nodes: list[Node], job: Job) -> CandidateNodes:
    """Ready, eligible, not draining nodes in the job's datacenters and node pool,
    sorted by ID so a seeded shuffle is deterministic."""
    out = CandidateNodes(
        nodes=[], total=len(all_nodes), datacenters=list(job.datacenters or ["*"]), pool=job.node_pool or "default"
    )
    dcs = job.datacenters
    dc_ok: dict[str, bool] = {}
    for node in all_nodes:
        if node.status != NODE_STATUS_READY:
            out.not_ready += 1
            continue
        if node.scheduling_eligibility != NODE_ELIGIBLE:
            out.ineligible += 1
            continue
        if node.drain_strategy is not None:
            out.draining += 1
            continue
        if not pool_matches(job.node_pool, node.node_pool):
            out.wrong_pool += 1
            continue
        out.in_pool += 1
        ok = dc_ok.get(node.datacenter)
        if ok is None:
            ok = dc_ok[node.datacenter] = datacenter_matches(dcs, node.datacenter)
        if not ok:
            out.wrong_datacenter += 1
            continue
        out.by_datacenter[node.datacenter] = out.by_datacenter.get(node.datacenter, 0) + 1
        out.nodes.append(node)
    out.nodes.sort(key=lambda n: n.id)
    return out


def driver_ok(node: Node, driver: str) -> bool:
    info = (node.drivers or {}).get(driver)
    if info is not None:
        return info.detected and info.healthy
    value = (node.attributes or {}).get(f"driver.{driver}")
    return value is not None and value.lower() in ("1", "true")


def _split(constraints: list[Constraint]) -> tuple[list[Constraint], list[Constraint]]:
    cached, escaped = [], []
    for c in constraints:
        if c.operand in PLACEMENT_OPERATORS:
            continue
        (escaped if constraint_is_escaped(c) else cached).append(c)
    return cached, escaped


def group_constraints(job: Job, tg: TaskGroup) -> list[Constraint]:
    out = list(job.constraints or ())
    out.extend(tg.constraints or ())
    for task in tg.tasks or ():
        out.extend(task.constraints or ())
    return out


@dataclass(slots=True)
class DistinctProperty:
    """`distinct_property`: at most `limit` allocs per value of `attribute`."""

    attribute: str
    limit: int
    text: str
    job_level: bool
    used: dict[str, int] = field(default_factory=dict)


class GroupChecker:
    """Feasibility of one task group of one job, with a per-class cache."""

    def __init__(self, job: Job, tg: TaskGroup, class_memo: dict[str, str]) -> None:
        self.job = job
        self.tg = tg
        self.class_memo = class_memo
        self.drivers = sorted({t.driver for t in tg.tasks or () if t.driver})
        self.cached, self.escaped = _split(group_constraints(job, tg))
        self.class_cache: dict[str, str] = {}  # computed class -> "" (feasible) or reason
        self.distinct_hosts = _has_distinct_hosts(job, tg)
        self.distinct_properties = _distinct_properties(job, tg)
        self.host_volumes = _host_volume_sources(tg)
        # Feasibility is decided by the node's class alone (the common, fast case).
        self.class_only = (
            not self.escaped and self.distinct_hosts is None and not self.distinct_properties
            and not self.host_volumes
        )

    @property
    def has_escaped(self) -> bool:
        return bool(self.escaped)

    def class_eligibility(self) -> dict[str, bool]:
        return {cls: reason == "" for cls, reason in self.class_cache.items()}

    def _check_class(self, node: Node) -> str:
        for c in self.cached:
            if not constraint_matches(c, node):
                return constraint_text(c)
        missing = [d for d in self.drivers if not driver_ok(node, d)]
        if missing:
            return REASON_MISSING_DRIVERS
        return ""

    def static_reason(self, node: Node) -> str:
        """Why the node can never run this group (constraints, drivers), or ""."""
        cls = class_of(node, self.class_memo)
        reason = self.class_cache.get(cls)
        if reason is None:
            reason = self.class_cache[cls] = self._check_class(node)
        if reason:
            return reason
        for c in self.escaped:
            if not constraint_matches(c, node):
                return constraint_text(c)
        if self.host_volumes:
            present = node.host_volumes or {}
            for source in self.host_volumes:
                if source not in present:
                    return REASON_MISSING_HOST_VOLUMES
        return ""

    def missing_drivers(self, node: Node) -> list[str]:
        return [d for d in self.drivers if not driver_ok(node, d)]

    def placement_reason(self, node: Node, job_allocs_on_node: int, group_allocs_on_node: int) -> str:
        """distinct_hosts / distinct_property against what the plan proposes."""
        if self.distinct_hosts is not None:
            count = job_allocs_on_node if self.distinct_hosts else group_allocs_on_node
            if count > 0:
                return OP_DISTINCT_HOSTS
        for prop in self.distinct_properties:
            value, found = resolve_target(prop.attribute, node)
            if not found or value is None:
                return f"missing property {prop.attribute}"
            if prop.used.get(value, 0) >= prop.limit:
                return prop.text
        return ""


def _host_volume_sources(tg: TaskGroup) -> list[str]:
    """Sources of the group's `type = "host"` volumes (the node must offer each)."""
    out = []
    for vol in (tg.volumes or {}).values():
        if isinstance(vol, dict) and vol.get("Type", "host") == "host" and vol.get("Source"):
            out.append(vol["Source"])
    return out


def _enabled(c: Constraint) -> bool:
    return c.r_target.strip().lower() not in ("false", "0")


def _has_distinct_hosts(job: Job, tg: TaskGroup) -> bool | None:
    """None: no distinct_hosts; True: job level (any group of the job); False: group level."""
    if any(c.operand == OP_DISTINCT_HOSTS and _enabled(c) for c in job.constraints or ()):
        return True
    if any(c.operand == OP_DISTINCT_HOSTS and _enabled(c) for c in tg.constraints or ()):
        return False
    return None


def _distinct_properties(job: Job, tg: TaskGroup) -> list[DistinctProperty]:
    out = []
    for level, constraints in ((True, job.constraints), (False, tg.constraints)):
        for c in constraints or ():
            if c.operand != OP_DISTINCT_PROPERTY:
                continue
            try:
                limit = int(c.r_target) if c.r_target else 1
            except ValueError:
                limit = 1
            out.append(DistinctProperty(c.l_target, max(limit, 1), constraint_text(c), level))
    return out
