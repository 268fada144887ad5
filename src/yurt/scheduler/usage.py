"""What each node would hold if the plan being built were committed.

`UsageTracker.usage(node)` builds a node's usage lazily (existing non-terminal
allocs, minus the plan's stops, plus the plan's placements) and keeps it current
as the scheduler stops and places allocs, so one placement costs O(1) per node
looked at rather than a rescan of the node's allocations.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from random import Random

from yurt.structs import Allocation, NetworkResource, Node, Port, evolve
from yurt.structs.alloc import ALLOC_DESIRED_EVICT, ALLOC_DESIRED_STOP, CLIENT_TERMINAL_STATUSES
from yurt.structs.resources import (
    DIM_CORES,
    DIM_CPU,
    DIM_DISK,
    DIM_MEMORY,
    alloc_comparable,
    alloc_ports,
    node_capacity,
    node_reserved_ports,
)

DIM_PORT_COLLISION = "network: reserved port collision"
_SERVER_TERMINAL = (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)
DIM_DYNAMIC_PORTS = "network: dynamic port selection failed"


class _Free:
    """Questions about free capacity, for NodeBase and NodeUsage alike."""

    __slots__ = ()

    def exhausted(self, cpu: int, mem: int, disk: int, cores: int) -> str:
        """The first dimension the demand does not fit in, or ""."""
        if self.free_cpu < cpu:
            return DIM_CPU
        if self.free_mem < mem:
            return DIM_MEMORY
        if self.free_disk < disk:
            return DIM_DISK
        if cores and len(self.free_cores) < cores:
            return DIM_CORES
        return ""

    def static_port_conflict(self, asks: list[NetworkResource]) -> bool:
        for net in asks:
            for p in net.reserved_ports or ():
                if p.value in self.ports and not p.ignore_collision:
                    return True
        return False

_JOB_BUCKETS = 16  # a power of two
_JOB_MASK = _JOB_BUCKETS - 1
_NO_JOBS: dict = {}  # the empty bucket, shared (never written: writers copy a bucket first)


class JobCounts:
    """A node's non-terminal allocs per job and group: (namespace, job ID) -> {group: count},
    spread over `_JOB_BUCKETS` dicts by the job ID's hash. Never changed once made (readers
    on other threads hold it): a new version (`added`, `JobEdit`) copies the bucket list and
    the buckets it writes, and shares the others with the version before. A node late in W1
    holds allocs of ~150-200 jobs: copying them all for each plan that placed there was most
    of the cost of carrying its usage over."""

    __slots__ = ("_buckets",)

    def __init__(self, buckets: list[dict] | None = None) -> None:
        self._buckets = buckets if buckets is not None else [_NO_JOBS] * _JOB_BUCKETS

    @classmethod
    def of(cls, counts: dict[tuple[str, str], dict[str, int]]) -> "JobCounts":
        buckets = [_NO_JOBS] * _JOB_BUCKETS
        for key, groups in counts.items():
            i = hash(key[1]) & _JOB_MASK
            bucket = buckets[i]
            if bucket is _NO_JOBS:
                bucket = buckets[i] = {}
            bucket[key] = groups
        return cls(buckets)

    def get(self, key: tuple[str, str], default=None):
        return self._buckets[hash(key[1]) & _JOB_MASK].get(key, default)

    def items(self):
        return chain.from_iterable(bucket.items() for bucket in self._buckets)

    def __len__(self) -> int:
        return sum(map(len, self._buckets))

    def __eq__(self, other) -> bool:
        if isinstance(other, JobCounts):
            other = dict(other.items())
        return isinstance(other, dict) and dict(self.items()) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JobCounts({dict(self.items())!r})"

    def added(self, allocs: list[Allocation]) -> "JobCounts":
        """A version with one more alloc per alloc of `allocs` (of their job and group)."""
        buckets = list(self._buckets)
        if len(allocs) == 1:  # most nodes of a big plan get one alloc
            alloc = allocs[0]
            key = (alloc.namespace, alloc.job_id)
            i = hash(key[1]) & _JOB_MASK
            bucket = buckets[i] = dict(buckets[i])
            groups = bucket[key] = dict(bucket.get(key) or ())
            groups[alloc.task_group] = groups.get(alloc.task_group, 0) + 1
            return JobCounts(buckets)
        edit = JobEdit(self, buckets)
        for alloc in allocs:
            edit.add(alloc, 1)
        return edit.done()


class JobEdit:
    """Builds the next version of a `JobCounts` (see there): `add` per alloc, then `done`."""

    __slots__ = ("_buckets", "_copied", "_keys")

    def __init__(self, counts: JobCounts, buckets: list[dict] | None = None) -> None:
        self._buckets = buckets if buckets is not None else list(counts._buckets)
        self._copied = 0  # bit i: bucket i is this edit's copy
        self._keys: set[tuple[str, str]] = set()  # keys whose groups map is this edit's copy

    def add(self, alloc: Allocation, sign: int) -> None:
        """Count `alloc` in (`sign` 1) or out (-1) of its job and group."""
        key = (alloc.namespace, alloc.job_id)
        i = hash(key[1]) & _JOB_MASK
        bucket = self._buckets[i]
        if not self._copied >> i & 1:
            bucket = self._buckets[i] = dict(bucket)
            self._copied |= 1 << i
        if key in self._keys:
            groups = bucket[key]
        else:
            self._keys.add(key)
            groups = bucket[key] = dict(bucket.get(key) or ())
        n = groups.get(alloc.task_group, 0) + sign
        if n:
            groups[alloc.task_group] = n
        else:
            del groups[alloc.task_group]

    def done(self) -> JobCounts:
        buckets = self._buckets
        for key in self._keys:  # jobs left without allocs there go
            bucket = buckets[hash(key[1]) & _JOB_MASK]
            if not bucket[key]:
                del bucket[key]
        return JobCounts(buckets)


_EMPTY_JOBS = JobCounts()
_NO_FINGERPRINT = (None, None, -1)  # an allocs-list fingerprint that never matches


class NodeBase(_Free):
    """What a node offers and what its existing (non-terminal) allocs hold, for one
    version of its alloc list. Cached across evaluations: with a million allocs,
    recounting every node's allocs for every evaluation would dominate scheduling."""

    __slots__ = ("fingerprint", "version", "conflict", "cap_cpu", "cap_mem", "free_cpu", "free_mem", "free_disk",
                 "free_cores", "ports", "min_port", "max_port", "ip", "jobs")

    def __init__(self, node: Node, allocs: list[Allocation], fingerprint: tuple) -> None:
        cap = node_capacity(node)
        self.fingerprint = fingerprint
        self.version: tuple | None = None  # (node object, node_allocs_index) when the state has one
        self.cap_cpu = self.free_cpu = cap.cpu_shares
        self.cap_mem = self.free_mem = cap.memory_mb
        self.free_disk = cap.disk_mb
        cores = set(cap.reserved_cores)
        ports = node_reserved_ports(node)
        res = node.node_resources
        self.min_port = res.min_dynamic_port if res else 20000
        self.max_port = res.max_dynamic_port if res else 32000
        nets = res.networks if res else None
        self.ip = nets[0].ip if nets else (node.attributes or {}).get("unique.network.ip-address", "")
        self.jobs = _EMPTY_JOBS  # JobCounts
        # the existing allocs already clash (cores or ports shared, a core the node lacks,
        # a reserved port): only a full `allocs_fit` can judge such a node
        self.conflict = False
        self._count_allocs(allocs, cores, ports)
        self.free_cores = frozenset(cores)
        self.ports = frozenset(ports)

    def carried(self, node: Node, index: int, cpu: int, mem: int, disk: int, cores: frozenset, ports: frozenset,
                jobs: JobCounts) -> "NodeBase":
        """A base of the same node offer holding what is given, for (`node`, `index`), with
        an allocs-list fingerprint that never matches (a reader of the allocs recounts)."""
        new = NodeBase.__new__(NodeBase)
        new.fingerprint, new.version, new.conflict = _NO_FINGERPRINT, (node, index), self.conflict
        new.cap_cpu, new.cap_mem = self.cap_cpu, self.cap_mem
        new.free_cpu, new.free_mem, new.free_disk = cpu, mem, disk
        new.free_cores, new.ports, new.min_port, new.max_port = cores, ports, self.min_port, self.max_port
        new.ip, new.jobs = self.ip, jobs
        return new

    def copy(self) -> "NodeBase":
        new = NodeBase.__new__(NodeBase)
        new.fingerprint, new.version, new.conflict = self.fingerprint, self.version, self.conflict
        new.cap_cpu, new.cap_mem = self.cap_cpu, self.cap_mem
        new.free_cpu, new.free_mem, new.free_disk = self.free_cpu, self.free_mem, self.free_disk
        new.free_cores, new.ports, new.min_port, new.max_port = self.free_cores, self.ports, self.min_port, self.max_port
        new.ip, new.jobs = self.ip, self.jobs
        return new

    def _count_allocs(self, allocs: list[Allocation], cores: set[int], ports: set[int]) -> None:
        """The same sums as `alloc_comparable`/`alloc_ports`, without building objects per
        alloc: this loop runs over every alloc of the cluster when the cache is cold."""
        cpu = mem = disk = 0
        jobs: dict[tuple[str, str], dict[str, int]] = {}
        for alloc in allocs:
            if alloc.desired_status in _SERVER_TERMINAL or alloc.client_status in CLIENT_TERMINAL_STATUSES:
                continue
            ar = alloc.allocated_resources
            if ar is None:
                used = alloc_comparable(alloc)
                cpu, mem, disk = cpu + used.cpu_shares, mem + used.memory_mb, disk + used.disk_mb
                if not used.reserved_cores <= cores:
                    self.conflict = True
                cores -= used.reserved_cores
            else:
                disk += ar.shared.disk_mb
                has_ports = ar.shared.networks or ar.shared.ports
                for task in ar.tasks.values():
                    cpu += task.cpu.cpu_shares
                    mem += task.memory.memory_mb
                    if task.cpu.reserved_cores:
                        if not cores.issuperset(task.cpu.reserved_cores):
                            self.conflict = True
                        cores.difference_update(task.cpu.reserved_cores)
                    if task.networks:
                        has_ports = True
                if has_ports:
                    held = alloc_ports(alloc)
                    if not ports.isdisjoint(held):
                        self.conflict = True
                    ports |= held
            groups = jobs.get((alloc.namespace, alloc.job_id))
            if groups is None:
                groups = jobs[(alloc.namespace, alloc.job_id)] = {}
            groups[alloc.task_group] = groups.get(alloc.task_group, 0) + 1
        if jobs:
            self.jobs = JobCounts.of(jobs)
        self.free_cpu -= cpu
        self.free_mem -= mem
        self.free_disk -= disk


# node id -> the node's cached bases, the last few stored (the newest last), so that an
# evaluation running on a snapshot a commit or two older than the newest state (the server
# runs two scheduler workers) finds its version too instead of recounting the node's allocs
# and pushing the newer version out (which the next plan commit then recounted again).
# Kept by the order they were stored, not by version: bases of another node object or
# state (tests reuse node IDs) age out instead of shadowing the current ones.
_BASE_CACHE: dict[str, tuple[NodeBase, ...]] = {}
_VERSIONS_KEPT = 3  # the newest and two older: enough for two workers (bench/micro_usage_cache.py)
_MODIFY_INDEX = attrgetter("modify_index")
_BASE_CACHE_LIMIT = 200_000  # nodes

# Why bases were recounted and what the writers carried over, counted since the last
# `STATS.clear()` (benches read them). Only the slow paths count: a few dict increments.
STATS: dict[str, int] = {}


def _count(what: str, n: int = 1) -> None:
    STATS[what] = STATS.get(what, 0) + n


def _fingerprint(node: Node, allocs: list[Allocation]) -> tuple:
    """Changes whenever the node or its alloc list changes: the state gives every write
    a higher modify index, and a removal changes the length. The end IDs keep apart
    unrelated states that reuse a node ID (tests)."""
    if not allocs:
        return (node.node_resources, node.reserved_resources, node.modify_index, 0)
    return (node.node_resources, node.reserved_resources, node.modify_index, len(allocs),
            max(map(_MODIFY_INDEX, allocs)), allocs[0].id, allocs[-1].id)


def _same_fingerprint(a: tuple, b: tuple) -> bool:
    # node resources compared by identity (stored objects are replaced, never edited;
    # holding them keeps a freed object's id from being reused)
    return a[0] is b[0] and a[1] is b[1] and a[2:] == b[2:]


def _miss_reason(kept: tuple[NodeBase, ...], node: Node, version: int | None) -> str:
    """Why no kept base serves (node, version), for `STATS`."""
    if not kept:
        return "no_base"
    versions = [b.version[1] for b in kept if b.version is not None and b.version[0] is node]
    if version is None or any(b.version is None for b in kept):
        return "unversioned"
    if not versions:
        return "node_changed"  # the node object was replaced and nothing re-keyed its base
    if version > max(versions):
        return "cache_behind"  # a write was not carried over
    if version < min(versions):
        return "snapshot_behind"  # the evaluation's snapshot is older than every kept version
    return "version_gap"


def _remember(node_id: str, base: NodeBase) -> None:
    """Keep `base` among the node's cached bases (replacing one of the same node object
    and version); an unversioned one (fingerprint-checked) replaces them all."""
    v = base.version
    kept = _BASE_CACHE.get(node_id)
    if kept is None and len(_BASE_CACHE) >= _BASE_CACHE_LIMIT:
        _BASE_CACHE.clear()
    if v is None or not kept:
        _BASE_CACHE[node_id] = (base,)
        return
    node, index = v
    for b in kept:
        w = b.version
        if w is None or (w[1] == index and w[0] is node):
            break  # one to replace: the general case below
    else:  # the usual case (a newer version carried over): the newest kept and this one
        _BASE_CACHE[node_id] = kept[1:] + (base,) if len(kept) >= _VERSIONS_KEPT else kept + (base,)
        return
    bases = [b for b in kept if b.version is not None and (b.version[1] != index or b.version[0] is not node)]
    bases.append(base)
    _BASE_CACHE[node_id] = tuple(bases[-_VERSIONS_KEPT:])


def node_base(node: Node, allocs: list[Allocation], version: int | None = None) -> NodeBase:
    """The base of `node` holding `allocs` (its allocs at `version` of its per-node alloc
    index, when the state has one): a cached one when the allocs list is the same, else a
    recount, which is cached."""
    kept = _BASE_CACHE.get(node.id, ())
    fp = _fingerprint(node, allocs)
    for base in kept:
        if _same_fingerprint(base.fingerprint, fp):
            _count("fingerprint_hit")  # no recount, but the allocs were read
            if version is not None and (base.version is None or base.version[1] != version
                                        or base.version[0] is not node):
                if base.version is None:
                    base.version = (node, version)
                else:
                    base = base.copy()
                    base.version = (node, version)
                    _remember(node.id, base)
            return base
    _count("recount")
    _count("recount:" + _miss_reason(kept, node, version))
    base = NodeBase(node, allocs, fp)
    if version is not None:
        base.version = (node, version)
    _remember(node.id, base)
    return base


def cached_base(node: Node, version: int) -> NodeBase | None:
    """The cached base of the node at `version` of its per-node alloc index (the state's
    `node_allocs_index`), without reading the node's allocs; else None. The node object
    is compared by identity: the state replaces it on every write, and another state's
    node with the same ID is another object."""
    for base in reversed(_BASE_CACHE.get(node.id, ())):
        v = base.version
        if v is not None and v[1] == version and v[0] is node:
            return base
    return None


def store_base(node_id: str, base: NodeBase) -> None:
    """Cache `base` (a carried-over usage: its `version` says for which node object and
    per-node alloc index it holds) beside the node's other kept versions."""
    _remember(node_id, base)


def _same_inputs(old: Node, new: Node) -> bool:
    """Whether a base counted for node object `old` holds for `new`: everything NodeBase
    reads of the node is the same object (stored objects are replaced, never edited)."""
    return (old.node_resources is new.node_resources and old.reserved_resources is new.reserved_resources
            and old.attributes is new.attributes)


def rekey_base(old: Node, new: Node, version: int) -> bool:
    """After a write that replaced the node object but changed none of its allocs (status,
    eligibility, drain), cache the base of (`old`, `version`) for (`new`, `version`) when
    everything it reads of the node is the same object. False when there is no such base
    or the node's resources or attributes changed (then the next reader recounts)."""
    base = cached_base(old, version)
    if base is None or cached_base(new, version) is not None:
        return base is not None
    if not _same_inputs(old, new):
        return False
    new_base = base.copy()
    new_base.fingerprint = _NO_FINGERPRINT  # (a reader of the allocs recounts)
    new_base.version = (new, version)
    _remember(new.id, new_base)
    return True


def _counted(alloc: Allocation | None, node_id: str) -> bool:
    return alloc is not None and alloc.node_id == node_id and not alloc.terminal


def advance_base(node: Node, old_version: int, new_version: int,
                 changes: list[tuple[Allocation | None, Allocation | None]], old_node: Node | None = None) -> bool:
    """After a write whose only effect on what the node's allocs hold is `changes` (each
    alloc as it was and as it is now, None when absent), cache the base of `new_version`
    derived from the cached base of `old_version` (of `old_node`, when the write also
    replaced the node object) instead of recounting the node's allocs later. False
    (nothing cached) when there is no such base or it holds clashing allocs."""
    if cached_base(node, new_version) is not None:
        return True  # carried already
    base = cached_base(old_node or node, old_version)
    if base is None or base.conflict:
        _count("carry:no_base" if base is None else "carry:conflict")
        return False
    if old_node is not None and old_node is not node and not _same_inputs(old_node, node):
        _count("carry:node_resources")
        return False
    _count("carry:advanced")
    new = base.copy()
    new.fingerprint = _NO_FINGERPRINT  # (a reader of the allocs recounts)
    new.version = (node, new_version)
    cores, ports = base.free_cores, base.ports
    jobs: JobEdit | None = None
    node_id = node.id
    cpu = mem = disk = 0
    for sign, alloc in [(-1, before) for before, _ in changes] + [(1, after) for _, after in changes]:
        if not _counted(alloc, node_id):
            continue
        _, a_cpu, a_mem, a_disk, a_cores, held = _shared_held_by(alloc)
        cpu += sign * a_cpu
        mem += sign * a_mem
        disk += sign * a_disk
        if sign > 0:
            if a_cores:
                if not a_cores <= cores:
                    new.conflict = True
                cores = cores - a_cores
            if held:
                if not held.isdisjoint(ports):
                    new.conflict = True
                ports = ports | held
        else:
            if a_cores:
                cores = cores | a_cores
            if held:
                ports = ports - held
        if jobs is None:
            jobs = JobEdit(base.jobs)
        jobs.add(alloc, sign)
    new.free_cpu -= cpu
    new.free_mem -= mem
    new.free_disk -= disk
    new.free_cores, new.ports = frozenset(cores), frozenset(ports)
    if jobs is not None:
        new.jobs = jobs.done()
    _remember(node_id, new)
    return True


_HELD: dict[int, tuple] = {}  # id(AllocatedResources) -> held_by(...) (the entry holds the object)
_HELD_LIMIT = 4096


def _shared_held_by(alloc: Allocation) -> tuple:
    """`held_by(alloc)`, computed once per AllocatedResources object: the allocs of a plan
    without ports, cores or devices share one."""
    ar = alloc.allocated_resources
    if ar is None:
        return held_by(alloc)
    held = _HELD.get(id(ar))
    if held is None or held[0] is not ar:
        if len(_HELD) >= _HELD_LIMIT:
            _HELD.clear()
        held = _HELD[id(ar)] = held_by(alloc)
    return held


def held_by(alloc: Allocation) -> tuple:
    """(allocated resources, cpu, memory, disk, reserved cores, ports): what the alloc holds
    on its node, as `alloc_comparable` and `alloc_ports` count it."""
    res = alloc_comparable(alloc)
    return (alloc.allocated_resources, res.cpu_shares, res.memory_mb, res.disk_mb,
            frozenset(res.reserved_cores), frozenset(alloc_ports(alloc)))


class NodeUsage(_Free):
    """A node's free capacity and taken ports under the proposed plan."""

    __slots__ = (
        "node", "free_cpu", "free_mem", "free_disk", "cap_cpu", "cap_mem",
        "free_cores", "ports", "min_port", "max_port", "ip", "job_count", "group_counts",
    )

    def __init__(self, node: Node, base: NodeBase, job_key: tuple[str, str]) -> None:
        self.node = node
        self.cap_cpu = base.cap_cpu
        self.cap_mem = base.cap_mem
        self.free_cpu = base.free_cpu
        self.free_mem = base.free_mem
        self.free_disk = base.free_disk
        # frozensets shared with the base until a placement or stop changes them
        self.free_cores: frozenset[int] = base.free_cores
        self.ports: frozenset[int] = base.ports
        self.min_port = base.min_port
        self.max_port = base.max_port
        self.ip = base.ip
        groups = base.jobs.get(job_key)
        if groups:
            self.group_counts: dict[str, int] = dict(groups)
            self.job_count = sum(groups.values())  # allocs of the job being scheduled
        else:
            self.group_counts = {}
            self.job_count = 0

    def add(self, alloc: Allocation, of_job: bool, sign: int = 1, held: tuple | None = None) -> None:
        """`held`: the alloc's `held_by` when the caller has it."""
        _, cpu, mem, disk, cores, ports = held or held_by(alloc)
        self.free_cpu -= sign * cpu
        self.free_mem -= sign * mem
        self.free_disk -= sign * disk
        if sign > 0:
            if cores:
                self.free_cores = self.free_cores - cores
            if ports:
                self.ports = self.ports | ports
        else:
            if cores:
                self.free_cores = self.free_cores | cores
            if ports:
                self.ports = self.ports - ports
        if of_job:
            self.job_count += sign
            self.group_counts[alloc.task_group] = self.group_counts.get(alloc.task_group, 0) + sign

    def assign_networks(self, asks: list[NetworkResource], rng: Random) -> list[NetworkResource] | None:
        """Host ports for the group's networks: static ones must be free, dynamic ones are
        drawn from the node's range. None when that is impossible."""
        taken: set[int] = set()
        out = []
        for net in asks:
            reserved = []
            for p in net.reserved_ports or ():
                if p.value in self.ports or p.value in taken:
                    if not p.ignore_collision:
                        return None
                taken.add(p.value)
                reserved.append(p)
            dynamic = []
            for p in net.dynamic_ports or ():
                value = self._pick_port(taken, rng)
                if value is None:
                    return None
                taken.add(value)
                dynamic.append(_with_value(p, value))
            out.append(evolve(net, ip=net.ip or self.ip, reserved_ports=reserved or None, dynamic_ports=dynamic or None))
        return out

    def _pick_port(self, taken: set[int], rng: Random) -> int | None:
        lo, hi = self.min_port, self.max_port
        for _ in range(20):
            value = rng.randint(lo, hi)
            if value not in self.ports and value not in taken:
                return value
        for value in range(lo, hi + 1):
            if value not in self.ports and value not in taken:
                return value
        return None

    def pick_cores(self, count: int) -> list[int]:
        return sorted(self.free_cores)[:count]


def _with_value(port: Port, value: int) -> Port:
    return evolve(port, value=value, to=port.to if port.to != -1 else value)


_NO_GROUPS: dict[str, int] = {}


class UsageTracker:
    """Node usage for one job's scheduling pass, kept in step with the plan."""

    def __init__(self, snapshot, namespace: str, job_id: str) -> None:
        self.snapshot = snapshot
        self.namespace = namespace
        self.job_id = job_id
        self.by_node: dict[str, NodeUsage] = {}
        self.stopped: dict[str, set[str]] = {}  # node -> alloc ids stopped by the plan
        self.placed: dict[str, list[Allocation]] = {}  # node -> new allocs in the plan
        self.log: list[str] = []  # node ids, appended whenever the plan changes a node's usage
        self._held: dict[int, tuple] = {}  # id(allocated resources) -> held_by(...) of placements sharing them
        self._node_version = getattr(snapshot, "node_allocs_index", None)
        # the job's allocs in `snapshot` (every one, terminal too), when the scheduler listed
        # them already (GenericScheduler._attempt): the class window reads their nodes
        self.job_allocs: list[Allocation] | None = None

    def _of_job(self, alloc: Allocation) -> bool:
        return alloc.job_id == self.job_id and alloc.namespace == self.namespace

    def _base(self, node: Node, known: NodeBase | None = None) -> tuple[NodeBase, list[Allocation] | None]:
        """The node's base in the snapshot (`known`: the caller read it already, e.g. the
        node table for this snapshot) and its allocs when they had to be read."""
        if known is not None:
            return known, None
        allocs = base = version = None
        if self._node_version is not None:
            version = self._node_version(node.id)
            base = cached_base(node, version)
        if base is None:
            allocs = self.snapshot.allocs_by_node(node.id)
            base = node_base(node, allocs, version)
        return base, allocs

    def peek(self, node: Node, known: NodeBase | None = None) -> tuple[NodeUsage | NodeBase, dict[str, int]]:
        """The node's usage under the plan (for reading only) and the allocs of the job
        on it per group; the cached base itself while the plan has not touched the node.
        `known`: the node's base in the snapshot, when the caller has it (see `_base`)."""
        u = self.by_node.get(node.id)
        if u is None:
            if node.id in self.stopped or node.id in self.placed:
                u = self.usage(node, known)
            else:
                base = self._base(node, known)[0]
                return base, base.jobs.get((self.namespace, self.job_id)) or _NO_GROUPS
        return u, u.group_counts

    def usage(self, node: Node, known: NodeBase | None = None) -> NodeUsage:
        u = self.by_node.get(node.id)
        if u is not None:
            return u
        base, allocs = self._base(node, known)
        u = NodeUsage(node, base, (self.namespace, self.job_id))
        stopped = self.stopped.get(node.id)
        if stopped:
            if allocs is None:
                allocs = self.snapshot.allocs_by_node(node.id)
            for alloc in allocs:
                if alloc.id in stopped and not alloc.terminal:
                    u.add(alloc, self._of_job(alloc), sign=-1)
        for alloc in self.placed.get(node.id, ()):
            u.add(alloc, True)
        self.by_node[node.id] = u
        return u

    def stop(self, alloc: Allocation) -> None:
        ids = self.stopped.setdefault(alloc.node_id, set())
        if alloc.id in ids:
            return
        ids.add(alloc.id)
        self.log.append(alloc.node_id)
        u = self.by_node.get(alloc.node_id)
        if u is not None and not alloc.terminal:
            u.add(alloc, self._of_job(alloc), sign=-1)

    def place(self, alloc: Allocation) -> None:
        self.placed.setdefault(alloc.node_id, []).append(alloc)
        self.log.append(alloc.node_id)
        u = self.by_node.get(alloc.node_id)
        if u is not None:
            u.add(alloc, True, held=self._held_by(alloc))

    def place_on(self, alloc: Allocation, u: NodeUsage, held: tuple) -> None:
        """`place` of an alloc of the job when the caller holds its node's usage `u` (from
        `usage`) and what it holds (`held_by`)."""
        node_id = alloc.node_id
        placed = self.placed.get(node_id)
        if placed is None:
            self.placed[node_id] = [alloc]
        else:
            placed.append(alloc)
        self.log.append(node_id)
        u.add(alloc, True, held=held)

    def note_ports(self, ar, like: Allocation, networks: list[NetworkResource]) -> None:
        """`ar` is `like`'s resources plus the group `networks` (ports assigned): what it holds
        is known without recounting (as alloc_ports: every port value > 0 of the networks)."""
        _, cpu, mem, disk, cores, ports = self._held_by(like)
        extra = {p.value for net in networks for p in (*(net.reserved_ports or ()), *(net.dynamic_ports or ()))
                 if p.value > 0}
        self._held[id(ar)] = (ar, cpu, mem, disk, cores, ports | extra if extra else ports)

    def _held_by(self, alloc: Allocation) -> tuple:
        """`held_by(alloc)`, computed once per AllocatedResources object (placements of a
        group without ports, cores or devices share one)."""
        ar = alloc.allocated_resources
        if ar is None:
            return held_by(alloc)
        held = self._held.get(id(ar))
        if held is None or held[0] is not ar:  # the entry holds `ar`: its id is not reused meanwhile
            held = self._held[id(ar)] = held_by(alloc)
        return held

    def unstop(self, alloc: Allocation) -> None:
        """Undo `stop` (the replacement could not be placed)."""
        ids = self.stopped.get(alloc.node_id)
        if not ids or alloc.id not in ids:
            return
        ids.discard(alloc.id)
        self.log.append(alloc.node_id)
        u = self.by_node.get(alloc.node_id)
        if u is not None and not alloc.terminal:
            u.add(alloc, self._of_job(alloc))
