"""Resource arithmetic: what an allocation uses, what a node offers, whether they fit.

`allocs_fit` is the one fit check both the scheduler and the plan applier use, so a
plan the scheduler builds is never rejected for reasons the scheduler could not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from .alloc import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
    port_mappings,
)
from .job import NetworkResource, Resources, TaskGroup
from .node import Node

BINPACK_MAX_FIT_SCORE = 18.0

DIM_CPU = "cpu"
DIM_MEMORY = "memory"
DIM_DISK = "disk"
DIM_CORES = "cores"
DIM_PORT_COLLISION = "network: port collision"
DIM_RESERVED_PORT = "network: reserved port collision"


@dataclass(slots=True)
class ComparableResources:
    """A flat sum of resources that can be added, subtracted and compared."""

    cpu_shares: int = 0
    memory_mb: int = 0
    memory_max_mb: int = 0
    disk_mb: int = 0
    reserved_cores: set[int] = field(default_factory=set)

    def copy(self) -> ComparableResources:
        return ComparableResources(
            self.cpu_shares, self.memory_mb, self.memory_max_mb, self.disk_mb, set(self.reserved_cores)
        )

    def add(self, other: ComparableResources) -> None:
        self.cpu_shares += other.cpu_shares
        self.memory_mb += other.memory_mb
        self.memory_max_mb += other.memory_max_mb
        self.disk_mb += other.disk_mb
        self.reserved_cores |= other.reserved_cores

    def subtract(self, other: ComparableResources) -> None:
        self.cpu_shares -= other.cpu_shares
        self.memory_mb -= other.memory_mb
        self.memory_max_mb -= other.memory_max_mb
        self.disk_mb -= other.disk_mb
        self.reserved_cores -= other.reserved_cores

    def superset(self, other: ComparableResources) -> tuple[bool, str]:
        """Does `self` (capacity) cover `other` (demand)? Else the first exhausted dimension."""
        if self.cpu_shares < other.cpu_shares:
            return False, DIM_CPU
        if self.memory_mb < other.memory_mb:
            return False, DIM_MEMORY
        if self.disk_mb < other.disk_mb:
            return False, DIM_DISK
        if not other.reserved_cores <= self.reserved_cores:
            return False, DIM_CORES
        return True, ""


def node_capacity(node: Node) -> ComparableResources:
    """What the node offers to allocations: its resources minus `reserved_resources`."""
    res = node.node_resources
    cap = ComparableResources()
    if res is not None:
        cap.cpu_shares = res.cpu.cpu_shares
        cap.memory_mb = res.memory.memory_mb
        cap.disk_mb = res.disk.disk_mb
        cores = res.cpu.reservable_cpu_cores
        cap.reserved_cores = set(cores) if cores is not None else set(range(res.cpu.total_cpu_cores))
    reserved = node.reserved_resources
    if reserved is not None:
        cap.cpu_shares -= reserved.cpu.cpu_shares
        cap.memory_mb -= reserved.memory.memory_mb
        cap.disk_mb -= reserved.disk.disk_mb
    return cap


def parse_port_ranges(spec: str) -> set[int]:
    """`"22,80,8000-8010"` -> the set of ports; invalid pieces raise ValueError naming them."""
    ports: set[int] = set()
    for piece in (p.strip() for p in (spec or "").split(",")):
        if not piece:
            continue
        lo, sep, hi = piece.partition("-")
        try:
            start = int(lo)
            end = int(hi) if sep else start
        except ValueError:
            raise ValueError(f"reserved_ports: invalid port range {piece!r}") from None
        if end < start:
            raise ValueError(f"reserved_ports: invalid port range {piece!r}")
        ports.update(range(start, end + 1))
    return ports


@lru_cache(maxsize=1024)
def _reserved_port_set(spec: str) -> frozenset[int]:
    return frozenset(parse_port_ranges(spec))


def node_reserved_ports(node: Node) -> set[int]:
    reserved = node.reserved_resources
    if reserved is None or not reserved.networks.reserved_host_ports:
        return set()
    return set(_reserved_port_set(reserved.networks.reserved_host_ports))


def _network_ports(networks: Iterable[NetworkResource] | None) -> set[int]:
    ports: set[int] = set()
    for net in networks or ():
        for p in (*(net.reserved_ports or ()), *(net.dynamic_ports or ())):
            if p.value > 0 and not p.ignore_collision:
                ports.add(p.value)
    return ports


def alloc_ports(alloc: Allocation) -> set[int]:
    """Host ports an allocation holds (group and task networks, and port mappings)."""
    ar = alloc.allocated_resources
    if ar is None:
        return set()
    ports = _network_ports(ar.shared.networks)
    for mapping in ar.shared.ports or ():
        if mapping.value > 0:
            ports.add(mapping.value)
    for task in ar.tasks.values():
        ports |= _network_ports(task.networks)
    return ports


DIM_DEVICES_OVERSUBSCRIBED = "device oversubscribed"


def device_key(dev) -> tuple[str, str, str]:
    return (dev.vendor, dev.type, dev.name)


def alloc_device_ids(alloc: Allocation) -> dict[tuple[str, str, str], set[str]]:
    """The device instances an allocation holds, per (vendor, type, name)."""
    out: dict[tuple[str, str, str], set[str]] = {}
    ar = alloc.allocated_resources
    if ar is None:
        return out
    for task in ar.tasks.values():
        for d in task.devices or ():
            key = (d.get("Vendor", ""), d.get("Type", ""), d.get("Name", ""))
            out.setdefault(key, set()).update(d.get("DeviceIDs") or ())
    return out


def device_collision(node: Node, allocs) -> bool:
    """Is any instance of `node` held by two of the non-terminal `allocs` (allocs_fit)?"""
    known = {device_key(d) for d in (node.node_resources.devices if node.node_resources else None) or ()}
    seen: set[tuple] = set()
    for alloc in allocs:
        if alloc.terminal:
            continue
        for key, ids in alloc_device_ids(alloc).items():
            if key not in known:
                continue
            for i in ids:
                if (key, i) in seen:
                    return True
                seen.add((key, i))
    return False


def task_group_demand(tg: TaskGroup) -> ComparableResources:
    """The resources a task group asks for (reserved cores are chosen at placement)."""
    out = ComparableResources()
    for task in tg.tasks or ():
        r = task.resources or Resources()
        out.cpu_shares += r.cpu
        out.memory_mb += r.memory_mb
        out.memory_max_mb += r.memory_max_mb or r.memory_mb
    out.disk_mb = tg.ephemeral_disk.size_mb if tg.ephemeral_disk is not None else 0
    return out


def alloc_comparable(alloc: Allocation) -> ComparableResources:
    """What an allocation uses; from its allocated resources, else from its job's group."""
    ar = alloc.allocated_resources
    if ar is None:
        tg = alloc.job.lookup_task_group(alloc.task_group) if alloc.job is not None else None
        return task_group_demand(tg) if tg is not None else ComparableResources()
    out = ComparableResources(disk_mb=ar.shared.disk_mb)
    for task in ar.tasks.values():
        out.cpu_shares += task.cpu.cpu_shares
        out.memory_mb += task.memory.memory_mb
        out.memory_max_mb += task.memory.memory_max_mb or task.memory.memory_mb
        out.reserved_cores.update(task.cpu.reserved_cores or ())
    return out


def allocs_fit(node: Node, allocs: list[Allocation]) -> tuple[bool, str]:
    """Do the non-terminal `allocs` fit on `node` together? `(False, dimension)` if not."""
    used = ComparableResources()
    reserved_ports = node_reserved_ports(node)
    seen_ports: set[int] = set()
    for alloc in allocs:
        if alloc.terminal:
            continue
        res = alloc_comparable(alloc)
        if used.reserved_cores & res.reserved_cores:
            return False, DIM_CORES
        used.add(res)
        ports = alloc_ports(alloc)
        if ports & reserved_ports:
            return False, DIM_RESERVED_PORT
        if ports & seen_ports:
            return False, DIM_PORT_COLLISION
        seen_ports |= ports
    if node.node_resources is not None and node.node_resources.devices and device_collision(node, allocs):
        return False, DIM_DEVICES_OVERSUBSCRIBED
    return node_capacity(node).superset(used)


def _free_fractions(node: Node, used: ComparableResources) -> tuple[float, float]:
    cap = node_capacity(node)
    free_cpu = 1.0 - (used.cpu_shares / cap.cpu_shares) if cap.cpu_shares > 0 else 0.0
    free_mem = 1.0 - (used.memory_mb / cap.memory_mb) if cap.memory_mb > 0 else 0.0
    return free_cpu, free_mem


def _clamp(score: float) -> float:
    return max(0.0, min(BINPACK_MAX_FIT_SCORE, score))


def binpack_from_fractions(free_cpu: float, free_mem: float) -> float:
    return _clamp(20.0 - (10.0**free_cpu + 10.0**free_mem))


def spread_from_fractions(free_cpu: float, free_mem: float) -> float:
    return _clamp((10.0**free_cpu + 10.0**free_mem) - 2.0)


def score_fit_binpack(node: Node, used: ComparableResources) -> float:
    """Higher for fuller nodes: 20 - (10^freeCpu + 10^freeMem), clamped to [0, 18]."""
    return binpack_from_fractions(*_free_fractions(node, used))


def score_fit_spread(node: Node, used: ComparableResources) -> float:
    """Higher for emptier nodes: (10^freeCpu + 10^freeMem) - 2, clamped to [0, 18]."""
    return spread_from_fractions(*_free_fractions(node, used))


def allocated_resources_for(
    tg: TaskGroup,
    networks: list[NetworkResource] | None = None,
    cores: dict[str, list[int]] | None = None,
) -> AllocatedResources:
    """The `AllocatedResources` of a placement of `tg`, with its networks already
    assigned (ports carry their host values) and reserved cores per task."""
    tasks: dict[str, AllocatedTaskResources] = {}
    for task in tg.tasks or ():
        r = task.resources or Resources()
        tasks[task.name] = AllocatedTaskResources(
            cpu=AllocatedCpuResources(cpu_shares=r.cpu, reserved_cores=(cores or {}).get(task.name)),
            memory=AllocatedMemoryResources(memory_mb=r.memory_mb, memory_max_mb=r.memory_max_mb),
        )
    shared = AllocatedSharedResources(
        disk_mb=tg.ephemeral_disk.size_mb if tg.ephemeral_disk is not None else 0,
        networks=networks or None,
        ports=port_mappings(networks) or None,
    )
    return AllocatedResources(tasks=tasks, shared=shared)
