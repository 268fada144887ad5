"""Picking a node for one placement: feasibility -> fit -> score -> limit -> max.

The candidate list is shuffled once per evaluation (seeded by the eval ID) and a
cursor moves through it across placements, as Nomad's static iterator does, so each
placement looks at about `limit` nodes instead of all of them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from random import Random

from yurt.structs import Affinity, Allocation, Job, NetworkResource, Node, TaskGroup
from yurt.structs.operator import SCHEDULER_ALGORITHM_SPREAD
from yurt.structs.resources import task_group_demand

from .constraints import check_operator, resolve_target
from .devices import (
    REASON_MISSING_DEVICES,
    DeviceFit,
    fit_devices,
    group_asks,
    tracker_used,
)
from .feasible import REASON_MISSING_DRIVERS, REASON_MISSING_HOST_VOLUMES, GroupChecker
from .host_networks import missing_host_network, needs_host_networks
from .metrics import PlacementMetrics
from .preempt import (
    Need,
    NodePreemptor,
    net_priority,
    preemption_score,
    select_preemptions,
)
from .score import score_parts
from .spread import SpreadScorer
from .usage import DIM_DYNAMIC_PORTS, DIM_PORT_COLLISION, NodeUsage, UsageTracker
from .window import FALLBACK, ClassWindow, window_applies

MAX_SKIP = 3
SKIP_SCORE_THRESHOLD = 0.0
AFFINITY_SPREAD_LIMIT = 100


@dataclass(slots=True)
class RankedOption:
    node: Node
    usage: NodeUsage
    score: float
    networks: list[NetworkResource] | None
    cores: dict[str, list[int]] | None
    preempted: list[Allocation] | None = None
    devices: dict[str, list[dict]] | None = None  # task -> assigned devices


def service_limit(node_count: int) -> int:
    return max(2, math.ceil(math.log2(node_count))) if node_count > 1 else 2


def _group_affinities(job: Job, tg: TaskGroup) -> list[Affinity]:
    out = list(job.affinities or ())
    out.extend(tg.affinities or ())
    for task in tg.tasks or ():
        out.extend(task.affinities or ())
    return out


class GroupPlacer:
    """Everything about one task group that placement needs, computed once."""

    def __init__(self, job: Job, tg: TaskGroup, checker: GroupChecker, node_count: int, algorithm: str) -> None:
        self.job = job
        self.tg = tg
        self.checker = checker
        demand = task_group_demand(tg)
        self.cpu = demand.cpu_shares
        self.mem = demand.memory_mb
        self.disk = demand.disk_mb
        self.task_cores = {t.name: t.resources.cores for t in tg.tasks or () if t.resources and t.resources.cores}
        self.cores = sum(self.task_cores.values())
        self.networks = list(tg.networks or ())
        self.dynamic_ports = sum(len(n.dynamic_ports or ()) for n in self.networks)
        self.static_ports = sum(len(n.reserved_ports or ()) for n in self.networks)
        self.static_port_values = frozenset(
            p.value for n in self.networks for p in n.reserved_ports or () if not p.ignore_collision)
        self.affinities = _group_affinities(job, tg)
        self.device_asks = group_asks(tg)
        self.host_networks = needs_host_networks(self.networks)
        self.affinity_total = sum(abs(a.weight) for a in self.affinities)
        self.spread_algorithm = algorithm == SCHEDULER_ALGORITHM_SPREAD
        self.spreads = SpreadScorer(job, tg) if (job.spreads or tg.spreads) else None
        self.count = max(tg.count, 1)
        if self.affinities or job.spreads or tg.spreads:
            self.limit = max(tg.count, AFFINITY_SPREAD_LIMIT)
        elif job.type == "batch":
            self.limit = 2
        else:
            self.limit = service_limit(node_count)

    def affinity_score(self, node: Node) -> float:
        matched = 0.0
        for a in self.affinities:
            lval, lfound = resolve_target(a.l_target, node)
            rval, rfound = resolve_target(a.r_target, node)
            if check_operator(a.operand or "=", lval, rval, lfound, rfound):
                matched += a.weight
        return matched / self.affinity_total if self.affinity_total else 0.0


class NodeSelector:
    """Runs the placement pipeline over a shuffled candidate list with a moving cursor."""

    def __init__(self, nodes: list[Node], tracker: UsageTracker, rng: Random, class_memo: dict[str, str]) -> None:
        self.nodes = nodes
        self.tracker = tracker
        self.rng = rng
        self.class_memo = class_memo
        self.cursor = 0
        self.nodes_scored = 0
        self.preemptor: NodePreemptor | None = None  # set when the job may preempt
        self._windows: dict[int, tuple[GroupPlacer, ClassWindow | None]] = {}
        self.layout = None  # (shuffle permutation, nodetable.Columns): see PlanBuilder.candidates

    def select(self, placer: GroupPlacer, penalty: set[str], m: PlacementMetrics,
               preempt: bool = False) -> RankedOption | None:
        if not preempt and not penalty:
            window = self._window(placer)
            if window is not None:
                option = window.select(self, m)
                if option is not FALLBACK:
                    return option
        best: RankedOption | None = None
        seen = 0
        skipped: list[RankedOption] = []
        nodes, count, limit, rank = self.nodes, len(self.nodes), placer.limit, self._rank
        for _ in range(count):
            if seen >= limit:
                break
            node = nodes[self.cursor]
            self.cursor += 1
            if self.cursor == count:
                self.cursor = 0
            option = rank(node, placer, penalty, m, preempt)
            if option is None:
                continue
            if option.score <= SKIP_SCORE_THRESHOLD and len(skipped) < MAX_SKIP:
                skipped.append(option)
                continue
            seen += 1
            if best is None or option.score > best.score:
                best = option
        for option in skipped:
            if seen >= placer.limit:
                break
            seen += 1
            if best is None or option.score > best.score:
                best = option
        if best is not None and placer.networks and best.networks is None:
            best.networks = best.usage.assign_networks(placer.networks, self.rng)
            if best.networks is None:  # cannot happen: enough ports were free when ranked
                return None
        return best

    def _window(self, placer: GroupPlacer) -> ClassWindow | None:
        """The class-id walk for this group (see `window`), or None where it does not apply."""
        entry = self._windows.get(id(placer))
        if entry is None:
            entry = self._windows[id(placer)] = (placer, ClassWindow(self, placer) if window_applies(placer) else None)
        return entry[1]

    def option(self, node: Node, u: NodeUsage, score: float, placer: GroupPlacer) -> RankedOption | None:
        """The chosen node of a window walk, with its ports assigned."""
        networks = None
        if placer.networks:
            networks = u.assign_networks(placer.networks, self.rng)
            if networks is None:
                return None
        return RankedOption(node, u, score, networks, None)

    def rank_on(self, node: Node, placer: GroupPlacer, m: PlacementMetrics,
                preempt: bool = False) -> RankedOption | None:
        """The pipeline on one given node (system jobs place on every feasible node)."""
        option = self._rank(node, placer, set(), m, preempt)
        if option is not None and placer.networks and option.networks is None:
            option.networks = option.usage.assign_networks(placer.networks, self.rng)
            if option.networks is None:
                return None
        return option

    def _filtered(self, node: Node, u: NodeUsage, placer: GroupPlacer, m: PlacementMetrics) -> bool:
        checker = placer.checker
        reason = checker.static_reason(node)
        if not reason:
            reason = checker.placement_reason(node, u.job_count, u.group_counts.get(placer.tg.name, 0))
            if not reason:
                return False
        self._record_filter(node, placer, m, reason)
        return True

    def _record_filter(self, node: Node, placer: GroupPlacer, m: PlacementMetrics, reason: str) -> None:
        m.filter(node.node_class, reason, self.filter_phrase(node, placer, reason))  # keyed by NodeClass, as Nomad

    @staticmethod
    def filter_phrase(node: Node, placer: GroupPlacer, reason: str) -> str:
        if reason == "distinct_hosts":
            return "already run this job (distinct_hosts)"
        if reason == REASON_MISSING_DRIVERS:
            return "missing driver " + ", ".join(placer.checker.missing_drivers(node))
        if reason == REASON_MISSING_HOST_VOLUMES:
            return reason
        return f"filtered by constraint `{reason}`"

    def _rank(self, node: Node, placer: GroupPlacer, penalty: set[str], m: PlacementMetrics,
              preempt: bool = False) -> RankedOption | None:
        m.evaluated += 1
        u = self.tracker.by_node.get(node.id) or self.tracker.usage(node)
        checker = placer.checker
        if checker.class_only:
            reason = checker.class_cache.get(node.computed_class) if node.computed_class else None
            if reason is None:
                reason = checker.static_reason(node)
            if reason:
                self._record_filter(node, placer, m, reason)
                return None
        elif self._filtered(node, u, placer, m):
            return None
        devfit = self._device_fit(node, placer, m)
        if devfit is False:
            return None
        short = (u.free_cpu < placer.cpu or u.free_mem < placer.mem or u.free_disk < placer.disk
                 or (placer.cores and len(u.free_cores) < placer.cores))
        networks = None
        dimension = ""
        if short:
            dimension = "resources"
        elif devfit is not None and not devfit.ok:
            dimension = devfit.dimension
        elif placer.networks:
            if placer.static_ports and u.static_port_conflict(placer.networks):
                dimension = DIM_PORT_COLLISION
            elif len(u.ports) + placer.dynamic_ports > u.max_port - u.min_port + 1:
                networks = u.assign_networks(placer.networks, self.rng)
                if networks is None:
                    dimension = DIM_DYNAMIC_PORTS
        if dimension:
            if preempt and self.preemptor is not None:
                option = self._preempting(node, u, placer, penalty, m, devfit)
                if option is not None:
                    return option
            if short:
                self._record_exhausted(node, u, placer, m)
            elif devfit is not None and not devfit.ok:
                m.exhaust(node.node_class, dimension, devfit.most_free, devfit.need)
            else:
                m.exhaust(node.node_class, dimension)
            return None
        cores = self._cores(u, placer) if placer.cores else None
        self.nodes_scored += 1
        return self._score(node, u, placer, penalty, m, networks, cores, devfit=devfit)

    def _device_fit(self, node: Node, placer: GroupPlacer, m: PlacementMetrics,
                    exclude: frozenset[str] = frozenset()) -> DeviceFit | None | bool:
        """Host networks and devices (devices.py, host_networks.py): False when the node is
        filtered, else the device assignment (None when the group asks for no devices)."""
        if placer.host_networks:
            reason = missing_host_network(node, placer.networks)
            if reason:
                m.filter(node.node_class, reason, reason)
                return False
        if not placer.device_asks:
            return None
        fit = fit_devices(node, placer.device_asks, tracker_used(self.tracker, node.id, exclude))
        if fit.missing:
            m.filter(node.node_class, REASON_MISSING_DEVICES, REASON_MISSING_DEVICES)
            return False
        return fit

    def _preempting(self, node: Node, u: NodeUsage, placer: GroupPlacer, penalty: set[str],
                    m: PlacementMetrics, devfit: DeviceFit | None = None) -> RankedOption | None:
        """The node ranked as if the cheapest set of lower-priority allocs were evicted."""
        candidates = self.preemptor.candidates(node.id)
        if not candidates:
            return None
        need = Need(placer.cpu - u.free_cpu, placer.mem - u.free_mem, placer.disk - u.free_disk,
                    placer.cores - len(u.free_cores), placer.static_port_values & u.ports)
        if devfit is not None and not devfit.ok and devfit.shortfall:
            need.devices = dict([min(devfit.shortfall.items(), key=lambda kv: kv[1])])
        chosen = select_preemptions(need, candidates, self.preemptor.counts)
        if not chosen:
            return None
        if devfit is not None:
            devfit = fit_devices(node, placer.device_asks,
                                 tracker_used(self.tracker, node.id, frozenset(c.alloc.id for c in chosen)))
            if not devfit.ok:
                return None
        v = copy.copy(u)
        for c in chosen:
            v.add(c.alloc, False, sign=-1)
        networks = None
        if placer.networks:
            networks = v.assign_networks(placer.networks, self.rng)
            if networks is None:
                return None
        cores = self._cores(v, placer) if placer.cores else None
        self.nodes_scored += 1
        score = preemption_score(net_priority([c.priority for c in chosen]))
        option = self._score(node, v, placer, penalty, m, networks, cores, score, devfit)
        option.preempted = [c.alloc for c in chosen]
        return option

    def _record_exhausted(self, node: Node, u: NodeUsage, placer: GroupPlacer, m: PlacementMetrics) -> None:
        dim = u.exhausted(placer.cpu, placer.mem, placer.disk, placer.cores)
        free = {"cpu": u.free_cpu, "memory": u.free_mem, "disk": u.free_disk}.get(dim, len(u.free_cores))
        need = {"cpu": placer.cpu, "memory": placer.mem, "disk": placer.disk}.get(dim, placer.cores)
        m.exhaust(node.node_class, dim, free, need)

    @staticmethod
    def _cores(u: NodeUsage, placer: GroupPlacer) -> dict[str, list[int]] | None:
        if not placer.cores:
            return None
        free = u.pick_cores(placer.cores)
        out, start = {}, 0
        for task, count in placer.task_cores.items():
            out[task] = free[start : start + count]
            start += count
        return out

    @staticmethod
    def _score(node, u, placer, penalty, m, networks, cores, preemption: float | None = None,
               devfit: DeviceFit | None = None) -> RankedOption:
        collisions = u.group_counts.get(placer.tg.name, 0) if u.group_counts else 0
        aff = placer.affinity_score(node) if placer.affinities else 0.0
        spread = placer.spreads.score(node) if placer.spreads is not None else 0.0
        device_score = devfit.score if devfit is not None and devfit.score is not None else None
        final, fit, anti, penalty_score, aff, spread = score_parts(
            placer, u.cap_cpu, u.cap_mem, u.free_cpu, u.free_mem, collisions, bool(penalty and node.id in penalty),
            aff, spread, preemption, device_score)
        m.scored.append((final, node.id, fit, anti, penalty_score, aff, spread, preemption or 0.0, device_score or 0.0))
        return RankedOption(node, u, final, networks, cores, devices=devfit.devices if devfit is not None else None)
