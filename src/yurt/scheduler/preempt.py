"""Preemption: which allocs on a full node to evict so a higher-priority alloc fits.

Nomad's rules, as pure functions over plain numbers:

- preemption is enabled per scheduler type (`SchedulerConfiguration.PreemptionConfig`;
  system on, sysbatch/service/batch off by default);
- only allocs of other jobs whose priority is at least `PRIORITY_DELTA` (10) below the
  placing job's are candidates;
- static ports the placement needs are freed first: every alloc holding one must be
  evicted (if one of them cannot be, the node cannot be used);
- then candidates are taken lowest priority first; within one priority the alloc whose
  resources are closest to what is still missing (Nomad's resource distance, plus a
  penalty once more allocs of one group would go than its `migrate.max_parallel`);
- device instances a placement lacks (per device group, `Need.devices`) are freed by
  evicting allocs holding instances of that group;
- a second pass keeps the smallest prefix of that set (lowest priority first, larger
  allocs first within a priority) that still frees enough;
- a node that needs preemption is scored with `preemption_score(net_priority(...))`,
  which is lower the higher (and the more numerous) the evicted allocs' priorities are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from yurt.structs import Allocation, SchedulerConfiguration
from yurt.structs.resources import alloc_comparable, alloc_device_ids, alloc_ports

PRIORITY_DELTA = 10
MAX_PARALLEL_PENALTY = 50.0
_SCORE_RATE = 0.0048
_SCORE_ORIGIN = 2048.0


def preemption_enabled(config: SchedulerConfiguration | None, job_type: str) -> bool:
    """Is preemption on for this scheduler type (Nomad's defaults when no config)?"""
    cfg = (config or SchedulerConfiguration()).preemption_config
    return {
        "system": cfg.system_scheduler_enabled,
        "sysbatch": cfg.sys_batch_scheduler_enabled,
        "service": cfg.service_scheduler_enabled,
        "batch": cfg.batch_scheduler_enabled,
    }.get(job_type, False)


@dataclass(slots=True)
class Candidate:
    """An alloc that could be evicted, with what evicting it frees."""

    alloc: Allocation
    priority: int
    cpu: int
    mem: int
    disk: int
    cores: frozenset[int]
    ports: frozenset[int]
    max_parallel: int = 0
    devices: dict[tuple[str, str, str], int] = field(default_factory=dict)  # instances held per group

    @property
    def group_key(self) -> tuple[str, str, str]:
        return (self.alloc.namespace, self.alloc.job_id, self.alloc.task_group)


def candidate(alloc: Allocation, priority: int) -> Candidate:
    res = alloc_comparable(alloc)
    tg = alloc.job.lookup_task_group(alloc.task_group) if alloc.job is not None else None
    max_parallel = tg.migrate.max_parallel if tg is not None and tg.migrate is not None else 0
    devices = {k: len(v) for k, v in alloc_device_ids(alloc).items()}
    return Candidate(alloc, priority, res.cpu_shares, res.memory_mb, res.disk_mb,
                     frozenset(res.reserved_cores), frozenset(alloc_ports(alloc)), max_parallel, devices)


def preemptible(
    allocs: Iterable[Allocation],
    namespace: str,
    job_id: str,
    job_priority: int,
    priority_of: Callable[[Allocation], int | None],
) -> list[Candidate]:
    """The allocs of other jobs at least `PRIORITY_DELTA` below `job_priority`."""
    out = []
    for alloc in allocs:
        if alloc.terminal or (alloc.job_id == job_id and alloc.namespace == namespace):
            continue
        priority = priority_of(alloc)
        if priority is None or job_priority - priority < PRIORITY_DELTA:
            continue
        out.append(candidate(alloc, priority))
    return out


@dataclass(slots=True)
class Need:
    """What is missing on the node: resources beyond its free capacity, and the static
    ports the placement asks for that someone holds."""

    cpu: int = 0
    mem: int = 0
    disk: int = 0
    cores: int = 0
    ports: frozenset[int] = field(default_factory=frozenset)
    devices: dict[tuple[str, str, str], int] = field(default_factory=dict)  # missing instances per group

    def met(self) -> bool:
        return (self.cpu <= 0 and self.mem <= 0 and self.disk <= 0 and self.cores <= 0 and not self.ports
                and all(v <= 0 for v in self.devices.values()))

    def take(self, c: Candidate, sign: int = 1) -> Need:
        """What is still missing once `c` is evicted (sign -1: once it is kept after all)."""
        devices = {k: v - sign * c.devices.get(k, 0) for k, v in self.devices.items()}
        return Need(self.cpu - sign * c.cpu, self.mem - sign * c.mem, self.disk - sign * c.disk,
                    self.cores - sign * len(c.cores), self.ports - c.ports if sign > 0 else self.ports, devices)


def resource_distance(ask: tuple[int, int, int], used: tuple[int, int, int]) -> float:
    """Nomad's basicResourceDistance: how far an alloc's (cpu, memory, disk) is from the ask,
    each coordinate relative to the ask; 0 when it frees exactly what is asked."""
    total = 0.0
    for a, u in zip(ask, used):
        if a > 0:
            total += ((a - u) / a) ** 2
    return math.sqrt(total)


def candidate_score(need: Need, c: Candidate, already: int) -> float:
    """Distance plus the max_parallel penalty (lower is better)."""
    score = resource_distance((max(need.cpu, 0), max(need.mem, 0), max(need.disk, 0)), (c.cpu, c.mem, c.disk))
    if any(v > 0 for v in need.devices.values()) and not any(
            c.devices.get(k) for k, v in need.devices.items() if v > 0):
        score += MAX_PARALLEL_PENALTY  # frees none of the missing devices
    if c.max_parallel > 0 and already >= c.max_parallel:
        score += (already + 1 - c.max_parallel) * MAX_PARALLEL_PENALTY
    return score


def select_preemptions(
    need: Need,
    candidates: list[Candidate],
    preempted_counts: dict[tuple[str, str, str], int] | None = None,
) -> list[Candidate] | None:
    """The allocs to evict so that `need` is met, or None when no set of candidates does."""
    if need.met():
        return []
    counts = dict(preempted_counts or {})
    chosen: list[Candidate] = []
    remaining = list(candidates)
    # static ports first: whoever holds one must go
    if need.ports:
        holders = [c for c in remaining if c.ports & need.ports]
        freed = frozenset().union(*(c.ports for c in holders)) if holders else frozenset()
        if not need.ports <= freed:
            return None
        for c in holders:
            chosen.append(c)
            need = need.take(c)
            counts[c.group_key] = counts.get(c.group_key, 0) + 1
        remaining = [c for c in remaining if c not in holders]
    mandatory = len(chosen)
    for priority in sorted({c.priority for c in remaining}):
        group = [c for c in remaining if c.priority == priority]
        while group and not need.met():
            best = min(group, key=lambda c: candidate_score(need, c, counts.get(c.group_key, 0)))
            group.remove(best)
            chosen.append(best)
            need = need.take(best)
            counts[best.group_key] = counts.get(best.group_key, 0) + 1
        if need.met():
            break
    if not need.met():
        return None
    return _smallest_prefix(chosen[:mandatory], chosen[mandatory:], need, chosen)


def _smallest_prefix(mandatory: list[Candidate], optional: list[Candidate], left: Need,
                     chosen: list[Candidate]) -> list[Candidate]:
    """Drop allocs the set does not need: undo everything optional, then add back
    lowest priority first (larger first within a priority) until the need is met."""
    need = left
    for c in optional:
        need = need.take(c, sign=-1)
    keep = list(mandatory)
    for c in sorted(optional, key=lambda c: (c.priority, -(c.cpu + c.mem + c.disk), chosen.index(c))):
        if need.met():
            break
        if not _helps(need, c):
            continue
        keep.append(c)
        need = need.take(c)
    return keep


def _helps(need: Need, c: Candidate) -> bool:
    """Does evicting `c` free anything still missing?"""
    return ((need.cpu > 0 and c.cpu > 0) or (need.mem > 0 and c.mem > 0) or (need.disk > 0 and c.disk > 0)
            or (need.cores > 0 and bool(c.cores)) or any(v > 0 and c.devices.get(k) for k, v in need.devices.items()))


def net_priority(priorities: list[int]) -> float:
    """The highest priority plus sum/highest: many evictions weigh more than one."""
    if not priorities:
        return 0.0
    top = max(priorities)
    if top <= 0:
        return float(len(priorities))
    return top + sum(priorities) / top


def preemption_score(net: float) -> float:
    """Nomad's logistic preemption score: near 1 for low net priority, 0.5 at 2048."""
    return 1.0 / (1.0 + math.exp(_SCORE_RATE * (net - _SCORE_ORIGIN)))


class NodePreemptor:
    """Preemption candidates per node for one job's scheduling pass: the node's live allocs
    minus those the plan already stops or evicts; `counts` tracks evictions per group
    (for the max_parallel penalty)."""

    def __init__(self, snapshot, tracker, namespace: str, job_id: str, priority: int) -> None:
        self.snapshot = snapshot
        self.tracker = tracker
        self.namespace = namespace
        self.job_id = job_id
        self.priority = priority
        self.counts: dict[tuple[str, str, str], int] = {}

    def priority_of(self, alloc: Allocation) -> int | None:
        if alloc.job is not None:
            return alloc.job.priority
        job = self.snapshot.job_by_id(alloc.namespace, alloc.job_id)
        return job.priority if job is not None else None

    def candidates(self, node_id: str) -> list[Candidate]:
        stopped = self.tracker.stopped.get(node_id, ())
        allocs = [a for a in self.snapshot.allocs_by_node(node_id) if a.id not in stopped]
        return preemptible(allocs, self.namespace, self.job_id, self.priority, self.priority_of)

    def record(self, evicted: list[Allocation]) -> None:
        for alloc in evicted:
            key = (alloc.namespace, alloc.job_id, alloc.task_group)
            self.counts[key] = self.counts.get(key, 0) + 1
