"""Turning reconciler buckets into a plan: stops, in-place updates and placements."""

from __future__ import annotations

import gc
import os
import uuid
from contextlib import contextmanager
from operator import itemgetter
from random import Random

from msgspec.structs import replace

from yurt.structs import Allocation, AllocMetric, Job, Node, Plan, evolve
from yurt.structs.alloc import ALLOC_CLIENT_PENDING, ALLOC_DESIRED_RUN, AllocDeploymentStatus, port_mappings
from yurt.structs.ids import HINT_RUN, next_locality_hint
from yurt.structs.resources import allocated_resources_for

from .constraints import resolve_target
from .devices import with_devices
from .feasible import CandidateNodes, GroupChecker, ready_nodes
from .host_networks import with_host_ips
from .metrics import PlacementMetrics
from .nodetable import node_table, shuffle, shuffled
from .preempt import NodePreemptor
from .reconcile import ALLOC_UPDATING, PlacementRequest, ReconcileResult
from .reschedule import new_tracker, penalty_nodes
from .select import GroupPlacer, NodeSelector, RankedOption
from .usage import UsageTracker


def eval_seed(eval_id: str, refresh_index: int = 0) -> int:
    """A shuffle seed from the eval ID (its random bits), varied per retry."""
    try:
        base = uuid.UUID(eval_id).int
    except ValueError:
        base = int.from_bytes(eval_id.encode()[-16:].rjust(16, b"\0"), "big")
    return (base & ((1 << 64) - 1)) ^ refresh_index


_ID_BATCH = 256
_NO_PENALTY: frozenset[str] = frozenset()
# a batch of 16-byte IDs as one int: the version nibble set to 4 and the variant bits to 10
# in all of them at once (as uuid.UUID(int=..., version=4)), each run of `HINT_RUN` IDs'
# last 2 bytes set to a locality hint (`yurt.structs.ids`), then cut at the dashes
_ID_HINTS = _ID_BATCH // HINT_RUN
_ID_KEEP = int.from_bytes(b"\xff" * 6 + b"\x0f\xff\x3f" + b"\xff" * 7, "big")
_ID_SET = int.from_bytes(b"\0" * 6 + b"\x40\x00\x80" + b"\0" * 7, "big")
_ID_KEEP_ALL = sum(_ID_KEEP << (128 * i) for i in range(_ID_BATCH))
_ID_SET_ALL = sum(_ID_SET << (128 * i) for i in range(_ID_BATCH))
_ID_PARTS = itemgetter(*(slice(i + a, i + b) for i in range(0, 32 * _ID_BATCH, 32)
                         for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))))


@contextmanager
def paused_gc():
    """No cyclic garbage collection while placing: a placement creates many acyclic
    objects, and a collection that starts while they are alive walks them all
    (depth-counted across threads: `yurt.gcpolicy.paused`)."""
    from yurt.gcpolicy import paused

    with paused():
        yield


def remove_stop(plan: Plan, alloc: Allocation) -> None:
    stops = plan.node_update.get(alloc.node_id)
    if not stops:
        return
    stops[:] = [a for a in stops if a.id != alloc.id]
    if not stops:
        del plan.node_update[alloc.node_id]


class PlanBuilder:
    """Builds one plan for one attempt of one evaluation."""

    def __init__(self, snapshot, plan: Plan, job: Job, eval_id: str, now_ns: int, algorithm: str, seed: int,
                 preempt: bool = False) -> None:
        self.snapshot = snapshot
        self.plan = plan
        self.job = job
        self.eval_id = eval_id
        self.now = now_ns
        self.algorithm = algorithm
        self.tracker = UsageTracker(snapshot, job.namespace, job.id)
        self.class_memo: dict[str, str] = {}
        self.rng = Random(seed)
        self._ids = Random(int.from_bytes(os.urandom(16), "big"))
        self._id_pool: list[str] = []  # hex strings of 16 random bytes, drawn in batches
        self._templates: dict[str, tuple] = {}  # group -> (group, alloc template, plain resources)
        self._plain: dict[str, tuple] = {}  # group -> what `_place_plain` needs (`_plain_setup`)
        self._plain_allocs: dict[str, Allocation] = {}
        self._metas: dict[tuple, object] = {}  # score entries shared by this eval's allocs (metrics.py)
        self._candidates: CandidateNodes | None = None
        self._ready: CandidateNodes | None = None  # see use_candidates
        self._layout = None  # (shuffle permutation, nodetable.Columns) when the candidates came from a NodeTable
        self._selector: NodeSelector | None = None
        self.placers: dict[str, GroupPlacer] = {}
        self.failed: dict[str, AllocMetric] = {}
        self.placed_ids: dict[str, str] = {}  # alloc id -> task group
        self.nodes_scored = 0
        self.last_failure_was_filter = False
        self.preempt = preempt
        self.memory_oversubscription = False  # off: memory_max is dropped from placements, as in Nomad

    # --- candidates and per-group machinery, built lazily -----------------------------
    @property
    def candidates(self) -> CandidateNodes:
        if self._candidates is None:
            table = node_table(self.snapshot) if self._ready is None else None
            if table is not None:  # the node work of earlier evals is reused (nodetable.py)
                ready, columns = table.ready(self.job)
                self._candidates, perm = shuffled(ready, self.rng)
                self._layout = (perm, columns)
            else:
                self._candidates = self._ready or ready_nodes(self.snapshot.nodes(), self.job)
                shuffle(self._candidates.nodes, self.rng)
        return self._candidates

    def use_candidates(self, ready: CandidateNodes) -> None:
        """Take `ready_nodes(...)` of this snapshot and job, already computed by the caller
        (`candidates` shuffles them when first needed, as it does its own)."""
        self._ready = ready

    @property
    def selector(self) -> NodeSelector:
        if self._selector is None:
            self._selector = NodeSelector(self.candidates.nodes, self.tracker, self.rng, self.class_memo)
            self._selector.layout = self._layout
            if self.preempt:
                job = self.job
                self._selector.preemptor = NodePreemptor(self.snapshot, self.tracker, job.namespace, job.id,
                                                         job.priority)
        return self._selector

    def placer(self, tg) -> GroupPlacer:
        p = self.placers.get(tg.name)
        if p is None:
            checker = GroupChecker(self.job, tg, self.class_memo)
            p = GroupPlacer(self.job, tg, checker, len(self.candidates.nodes), self.algorithm)
            self._seed_distinct_properties(p)
            self._seed_spreads(p)
            self.placers[tg.name] = p
        return p

    def _seed_distinct_properties(self, p: GroupPlacer) -> None:
        props = p.checker.distinct_properties
        if not props:
            return
        for alloc in self.snapshot.allocs_by_job(self.job.namespace, self.job.id):
            if alloc.terminal or alloc.id in self.tracker.stopped.get(alloc.node_id, ()):
                continue
            node = self.snapshot.node_by_id(alloc.node_id)
            if node is not None:
                self._count_property(p, node, alloc.task_group, 1, resolve_target)

    def _seed_spreads(self, p: GroupPlacer) -> None:
        if p.spreads is None:
            return
        for alloc in self.snapshot.allocs_by_job(self.job.namespace, self.job.id):
            if alloc.task_group != p.tg.name or alloc.terminal:
                continue
            if alloc.id in self.tracker.stopped.get(alloc.node_id, ()):
                continue
            node = self.snapshot.node_by_id(alloc.node_id)
            if node is not None:
                p.spreads.count(node)

    @staticmethod
    def _count_property(p: GroupPlacer, node, group: str, sign: int, resolve) -> None:
        for prop in p.checker.distinct_properties:
            if not prop.job_level and group != p.tg.name:
                continue
            value, found = resolve(prop.attribute, node)
            if found and value is not None:
                prop.used[value] = prop.used.get(value, 0) + sign

    # --- the plan ----------------------------------------------------------------------
    def stop(self, alloc: Allocation, desc: str, client_status: str = "") -> None:
        self.plan.append_stopped_alloc(alloc, desc, client_status)
        self.tracker.stop(alloc)

    def apply_stops(self, result: ReconcileResult) -> None:
        for req in result.stop:
            self.stop(req.alloc, req.description, req.client_status)

    def apply_attribute_updates(self, result: ReconcileResult) -> None:
        for alloc in result.attribute_updates:
            self.plan.append_alloc(evolve(alloc, job=None, modify_time=self.now))

    def apply_inplace(self, result: ReconcileResult) -> list[PlacementRequest]:
        """In-place updates whose node still passes the new constraints; the others come
        back as destructive placements."""
        destructive = []
        checkers: dict[str, GroupChecker] = {}
        for alloc in result.inplace:
            tg = self.job.lookup_task_group(alloc.task_group)
            if tg is None:
                continue
            checker = checkers.get(tg.name)
            if checker is None:
                checker = checkers[tg.name] = GroupChecker(self.job, tg, self.class_memo)
            node = self.snapshot.node_by_id(alloc.node_id)
            if node is None or checker.static_reason(node):
                du = result.desired_tg_updates.get(tg.name)
                if du is not None:
                    du.in_place_update -= 1
                    du.destructive_update += 1
                destructive.append(PlacementRequest(alloc.name, tg, alloc, False, "destructive", ALLOC_UPDATING))
                continue
            updated = evolve(
                alloc, eval_id=self.eval_id, job=None, job_version=self.job.version, modify_time=self.now
            )
            self.plan.append_alloc(updated)
        return destructive

    def place_all(self, requests: list[PlacementRequest]) -> None:
        with paused_gc():
            for req in requests:
                name = req.task_group.name
                if name in self.failed:
                    self.failed[name].coalesced_failures += 1
                    continue
                if req.previous is None and not req.deployment_id and not req.canary and self._place_plain(req):
                    continue
                self.place_one(req)
        if self._selector is not None:
            self.nodes_scored = self._selector.nodes_scored

    def _place_plain(self, req: PlacementRequest) -> bool:
        """`place_one` of a new placement (no previous alloc, deployment or canary) of a
        group without networks when the class window's plain short walk picks its node
        (`ClassWindow.next_plain`, W1's usual placement): the same alloc, metrics and
        tracker update, without the general path's per-placement objects (PlacementMetrics,
        RankedOption) and layers. False (nothing done) when the general path must place it."""
        tg = req.task_group
        fast = self._plain.get(tg.name)
        if fast is None or fast[0] is not tg:
            fast = self._plain[tg.name] = self._plain_setup(tg)
        window = fast[1]
        if window is None:
            return False
        choice = window.next_plain(self._selector)
        if choice is None:
            return False
        pos, score, top, gaps = choice
        node = window.nodes[pos]
        u = window._usage(node, pos)
        template, plain, metric, held = fast[2]
        if template is None:  # the group's alloc template, made on its first placement
            _, template, plain = self._template(tg, RankedOption(node, u, score, None, None))
            metric = PlacementMetrics()
            metric.evaluated = fast[3].limit
            metric = metric.to_alloc_metric(self.candidates, failed=False)  # without score entries
            held = self.tracker._held_by(replace(template, allocated_resources=plain))
            fast[2][:] = (template, plain, metric, held)
        if gaps is not None:  # the walk passed filtered or exhausted nodes: their counters too
            gapped = fast[4]
            metric = gapped.get(gaps)
            if metric is None:
                m = PlacementMetrics()
                window.record_gaps(m, gaps)
                metric = gapped[gaps] = m.to_alloc_metric(self.candidates, failed=False)
        pool = self._id_pool
        alloc_id = pool.pop() if pool else self._alloc_id()
        alloc = replace(template, id=alloc_id, name=req.name, node_id=node.id, node_name=node.name,
                        allocated_resources=plain, metrics=replace(metric, score_meta_data=top))
        self.plan.append_alloc(alloc)
        self.tracker.place_on(alloc, u, held)
        window.placed(pos, node, u)
        self.placed_ids[alloc_id] = tg.name
        return True

    def _plain_setup(self, tg) -> tuple:
        """(group, its ClassWindow or None when `_place_plain` does not apply, [template,
        plain resources, AllocMetric without score entries, what the alloc holds] once known,
        placer, {gaps: AllocMetric without score entries} of walks that passed filtered or
        exhausted nodes (read-only, shared by the allocs with the same counters))."""
        p = self.placer(tg)
        window = None
        if self.candidates.nodes and not p.networks and p.spreads is None and not p.checker.distinct_properties:
            window = self.selector._window(p)
        return (tg, window, [None, None, None, None], p, {})

    def place_one(self, req: PlacementRequest, node: Node | None = None) -> Allocation | None:
        """Place `req` on the best node, or only on `node` when given (system jobs: a node
        that is merely infeasible there is not a failure)."""
        p = self.placer(req.task_group)
        prev = req.previous
        if prev is not None and req.stop_previous:
            self.stop(prev, req.stop_previous)
        penalty = penalty_nodes(prev) if (prev is not None and req.reschedule) else _NO_PENALTY
        m = PlacementMetrics()
        if node is not None:
            option = self.selector.rank_on(node, p, m, self.preempt)
        else:
            option = self.selector.select(p, penalty, m) if self.candidates.nodes else None
            if option is None and self.preempt and self.candidates.nodes:
                # Nomad's selectNextOption: only when nothing fits, look again allowing evictions
                m = PlacementMetrics()
                option = self.selector.select(p, penalty, m, preempt=True)
        if option is None:
            if prev is not None and req.stop_previous:
                remove_stop(self.plan, prev)
                self.tracker.unstop(prev)
            self.last_failure_was_filter = node is not None and not m.exhausted
            if not self.last_failure_was_filter:
                self._record_failure(p.tg.name, m)
            return None
        alloc = self._new_alloc(req, option, m)
        if option.preempted:
            self._evict(alloc, option.preempted)
        self.plan.append_alloc(alloc)
        self.tracker.place(alloc)
        self.placed_ids[alloc.id] = p.tg.name
        if p.spreads is not None:
            p.spreads.count(option.node)
        if p.checker.distinct_properties:
            for other in self.placers.values():
                self._count_property(other, option.node, p.tg.name, 1, resolve_target)
        return alloc

    def _evict(self, alloc: Allocation, victims: list[Allocation]) -> None:
        """Record the evictions that make room for `alloc` (Nomad's AppendPreemptedAlloc)."""
        annotations = self.plan.annotations
        for victim in victims:
            self.plan.append_preempted_alloc(victim, alloc.id)
            self.tracker.stop(victim)
            if annotations is not None:
                annotations.preempted_allocs = (annotations.preempted_allocs or []) + [victim]
                du = annotations.desired_tg_updates.get(alloc.task_group)
                if du is not None:
                    du.preemptions += 1
        self.selector.preemptor.record(victims)

    def _alloc_id(self) -> str:
        """A random UUID (v4) but for its last 4 hex digits, a locality hint shared by the
        `HINT_RUN` IDs handed out in a row (the allocs table keeps them in one trie leaf).
        Drawn from a generator seeded once from the OS, not from the eval ID: a redelivered
        eval must never reuse IDs of allocs it already placed."""
        pool = self._id_pool
        if not pool:
            bits = int.from_bytes(self._ids.randbytes(16 * _ID_BATCH), "big") & _ID_KEEP_ALL | _ID_SET_ALL
            raw = bytearray(bits.to_bytes(16 * _ID_BATCH, "big"))
            hints = [next_locality_hint() for _ in range(_ID_HINTS)]
            raw[14::16] = b"".join(bytes((h >> 8,)) * HINT_RUN for h in hints)
            raw[15::16] = b"".join(bytes((h & 255,)) * HINT_RUN for h in hints)
            parts = iter(_ID_PARTS(raw.hex()))
            pool.extend(map("-".join, zip(parts, parts, parts, parts, parts)))
        return pool.pop()

    def _record_failure(self, group: str, m: PlacementMetrics) -> None:
        metric = self.failed.get(group)
        if metric is None:
            self.failed[group] = m.to_alloc_metric(self.candidates, failed=True)
        else:
            metric.coalesced_failures += 1

    def _resources(self, tg, option):
        resources = allocated_resources_for(tg, option.networks, option.cores)
        resources = with_host_ips(with_devices(resources, option.devices), option.node, option.networks)
        if self.memory_oversubscription or not any(t.memory.memory_max_mb for t in resources.tasks.values()):
            return resources
        tasks = {name: evolve(t, memory=evolve(t.memory, memory_max_mb=0)) for name, t in resources.tasks.items()}
        return evolve(resources, tasks=tasks)

    def _template(self, tg, option) -> tuple:
        """(alloc template, resources of a placement without ports, cores or devices) for
        the group: such placements share one (read-only) AllocatedResources."""
        entry = self._templates.get(tg.name)
        if entry is None or entry[0] is not tg:
            job = self.job
            template = Allocation(
                namespace=job.namespace, eval_id=self.eval_id, job_id=job.id, job=None, task_group=tg.name,
                desired_status=ALLOC_DESIRED_RUN, client_status=ALLOC_CLIENT_PENDING,
                create_time=self.now, modify_time=self.now, job_version=job.version,
            )
            plain = self._resources(tg, RankedOption(option.node, option.usage, 0.0, None, None))
            entry = self._templates[tg.name] = (tg, template, plain)
        return entry

    def _plain_alloc(self, tg, template: Allocation, plain) -> Allocation:
        """An alloc of the group holding its port-less resources (for UsageTracker.note_ports)."""
        alloc = self._plain_allocs.get(tg.name)
        if alloc is None or alloc.allocated_resources is not plain:
            alloc = self._plain_allocs[tg.name] = replace(template, allocated_resources=plain)
        return alloc

    def _new_alloc(self, req: PlacementRequest, option, m: PlacementMetrics) -> Allocation:
        tg = req.task_group
        prev = req.previous
        node = option.node
        _, template, plain = self._template(tg, option)
        if option.cores is not None or option.devices is not None:
            resources = self._resources(tg, option)
        elif option.networks is not None:  # as `_resources`: only the shared part differs
            networks = option.networks
            shared = replace(plain.shared, networks=networks or None, ports=port_mappings(networks) or None)
            resources = replace(plain, shared=shared)
            if self.placers[tg.name].host_networks:  # else no port has a host network: no address to set
                resources = with_host_ips(resources, node, networks)
            self.tracker.note_ports(resources, self._plain_alloc(tg, template, plain), networks)
        else:
            resources = plain
        # the template holds every field that is alike for the group's placements, and the
        # defaults of the optional ones below
        optional = {}
        if prev is not None:
            optional["previous_allocation"] = prev.id
            optional["reschedule_tracker"] = (new_tracker(prev, tg.reschedule_policy, self.now) if req.reschedule
                                              else prev.reschedule_tracker)
        if option.preempted:
            optional["preempted_allocations"] = [v.id for v in option.preempted]
        if req.deployment_id:
            optional["deployment_id"] = req.deployment_id
        if req.canary:
            optional["deployment_status"] = AllocDeploymentStatus(canary=True)
        metrics = m.to_alloc_metric(self.candidates, failed=False, metas=self._metas)
        if optional:
            return replace(template, id=self._alloc_id(), name=req.name, node_id=node.id, node_name=node.name,
                           allocated_resources=resources, metrics=metrics, **optional)
        # (msgspec's replace takes a slower path for any `**` argument, even an empty one)
        return replace(template, id=self._alloc_id(), name=req.name, node_id=node.id, node_name=node.name,
                       allocated_resources=resources, metrics=metrics)
