"""The state's tables and the read API over them (`StateSnapshot`).

`Tables` holds one `CowMap` per table and per secondary index, plus the per-table
indexes. A committed `Tables` is never changed: a transaction works on a shallow copy
whose maps it rewrites under a fresh generation, so a `StateSnapshot` is just a
reference to the committed `Tables` and costs O(1).

Keys: jobs, job_versions, job_summary and the job-keyed indexes use `(namespace, job_id)`;
evals, allocs and nodes use their ID. Secondary indexes map a key to a `CowMap` used
as a set of IDs: `allocs_by_job`, `allocs_by_node`, `allocs_by_eval`, `evals_by_job`
(`allocs_by_node` keeps each alloc's AllocModifyIndex as the value: the client's alloc
watch reads its `{alloc ID: AllocModifyIndex}` map straight from it).
`allocs_by_prefix` and `evals_by_prefix` group IDs by their first `ALLOC_PREFIX_LEN` (3) and `PREFIX_LEN` (2) characters
(short-ID lookups among a million allocs scan one group; `allocs_by_prefix` is a plain dict
per version, never changed once committed, of `cow.IdGroup`s). New alloc IDs reach `allocs_by_prefix` in batches:
until then they wait in `alloc_tail` (`IdTail`), which a prefix lookup scans too. `job_live` maps a job key to `(non-terminal allocs, non-terminal evals)` so the job
status rules need no scan.
Each node's version map carries the order in which it was written (`NodeAllocLog`, in the
map's `_log` / `_log_n`), so "the node's allocs with AllocModifyIndex > K" needs no scan of it.
"""

from bisect import bisect_right
from operator import attrgetter, itemgetter
from typing import Any

from yurt.structs import Allocation, Evaluation, Job, JobSummary, Node, SchedulerConfiguration

from .cow import EMPTY, EMPTY_FLAT, EMPTY_HINTED, CowMap, owned_dict

TABLES = ("jobs", "job_versions", "job_summary", "evals", "allocs", "nodes", "scheduler_config", "periodic_launch",
          "scaling_event", "deployment")
PREFIX_TABLES = ("jobs", "evals", "allocs", "nodes")

_MAPS = (
    "jobs",
    "job_versions",
    "job_summary",
    "evals",
    "allocs",
    "nodes",
    "allocs_by_job",
    "allocs_by_node",
    "allocs_by_eval",
    "evals_by_job",
    "job_live",
    "evals_by_prefix",
    "periodic_launch",
    "scaling_event",
    "deployment",
)
PREFIX_LEN = 2  # `allocs_by_prefix` / `evals_by_prefix` group IDs by their first 2 characters
# `allocs_by_prefix` groups by 4 characters (65,536 groups): a plan's new allocs copy the
# tuple of every group they land in, so groups of 2 characters (~3,900 IDs each at
# 1,000,000 allocs) made each 1,000-alloc plan copy ~all the alloc IDs: 10% of the server's
# CPU late in C1M. With 4, a group holds ~15 IDs at a million.
# Since new IDs reach the groups only in folds of `ALLOC_TAIL_FOLD` (below), no plan copies a
# group, and 3 characters (4,096 groups, ~250 IDs each at a million) pay: a fold of 16,384 IDs
# wrote ~14,500 of the 65,536 groups of 4 characters, each a cold group, chunk tuple and dict
# slot (5.2 us per ID at 700,000 allocs), and writes each of the 4,096 now (1.4-1.9 us per ID).
ALLOC_PREFIX_LEN = 3
# New alloc IDs wait in `Tables.alloc_tail` until this many, then go into `allocs_by_prefix`
# in one batch (`Txn.commit`): one plan's ~1,000 IDs land in ~1,000 of the ~2,000 leaves of
# the 65,536 groups' trie, so adding them plan by plan copied about the whole index per plan
# (~6% of the state writes' CPU). A prefix lookup scans the waiting IDs (~1 ms at most).
ALLOC_TAIL_FOLD = 16384

_by_id = attrgetter("id")
_DEFAULT_SCHEDULER_CONFIG = SchedulerConfiguration()


def _by_ns_id(obj: Any) -> tuple[str, str]:
    return (obj.namespace, obj.id)


_by_value = itemgetter(1)


class IdTail:
    """Alloc IDs added since `allocs_by_prefix` was last written, in order. One list is
    shared by every version of the tables: a version sees its first `Tables.alloc_tail_n`
    entries, and a write appends at the end, so a version's prefix never changes. Entries
    written by another version (a dropped transaction, a writer that started from an older
    version) and IDs deleted since are there too: a reader keeps only IDs its allocs table
    holds. Every ID of the allocs table is in its `allocs_by_prefix` group or here."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: list[str] = []


class NodeAllocLog:
    """The writes to one node's `{alloc ID: AllocModifyIndex}` map (`allocs_by_node`), in
    the order they were made: `ids[i]` was written at `marks[i]`, the highest
    AllocModifyIndex written up to and including entry i (so `marks` never decreases).

    One log is shared by every version of the node's map: a map sees the first `_log_n`
    entries of its `_log` (set by `log_version_writes` on the map a write made), and a
    write appends at the end, so a version's prefix never changes.
    Any alloc with AllocModifyIndex v > K in the map had its last write where `marks` > K
    already, so the entries after `bisect_right(marks, K)` hold every ID to answer, plus IDs
    written again since, removed, or written by another version (a dropped transaction, a
    writer that started from an older version): each is checked against the map."""

    __slots__ = ("ids", "marks")

    def __init__(self, ids: list[str], marks: list[int]) -> None:
        self.ids = ids
        self.marks = marks


def log_version_writes(bucket: CowMap, before: CowMap | None, writes: Any) -> None:
    """Give the node's version map `bucket` (owned by the writing generation), which
    `writes` ((alloc ID, AllocModifyIndex) pairs, in order; removals need none) made from
    `before`, its log: `before`'s continued, or one built from `bucket` when `before` had
    none. A log past twice the map's size (plus 64) is rebuilt from the map: O(1) amortized
    per write, O(allocs) memory."""
    if not bucket:
        return
    log = before._log if before is not None else None
    if log is None:
        _rebuild(bucket)
        return
    ids, marks = log.ids, log.marks
    top = marks[-1]
    for alloc_id, index in writes:
        if index > top:
            top = index
        ids.append(alloc_id)
        marks.append(top)
    n = len(ids)
    if n > 2 * bucket._size + 64:
        _rebuild(bucket)
    else:
        bucket._log, bucket._log_n = log, n


def _rebuild(bucket: CowMap) -> None:
    items = sorted(bucket.items(), key=_by_value)
    bucket._log, bucket._log_n = NodeAllocLog([i for i, _ in items], [v for _, v in items]), len(items)


def scan_changed(versions: CowMap, since: int) -> list[str]:
    """IDs in a node's version map with AllocModifyIndex > since, by a scan of the map."""
    # leaf by leaf: ~40% less CPU than through the `items()` generator
    return [alloc_id for leaf in versions._leaves() for alloc_id, index in leaf.items() if index > since]


TOUCH_LOG_MAX = 128  # commits kept in `Tables.touch_log`


def log_touched(t: "Tables", index: int, touched: set[str]) -> None:
    """Note in `t` (a transaction's tables) that the commit at `index` touched the index
    keys `touched` (the set itself is kept: never changed after its commit). Versions share
    the log (a tuple of the last TOUCH_LOG_MAX commits; `floor`: the highest index dropped)."""
    lineage, floor, entries = t.touch_log
    if len(entries) >= TOUCH_LOG_MAX:
        floor = entries[-TOUCH_LOG_MAX][0]
        entries = entries[1 - TOUCH_LOG_MAX:]
    t.touch_log = (lineage, floor, entries + ((index, touched),))


class Tables:
    __slots__ = (*_MAPS, "allocs_by_prefix", "scheduler_config", "indexes", "index", "node_allocs_cache", "alloc_tail", "alloc_tail_n",
                 "alloc_tail_mixed", "touch_log")

    def __init__(self) -> None:
        for name in _MAPS:
            setattr(self, name, EMPTY)
        self.allocs_by_node = EMPTY_FLAT  # a `cow.FlatMap`: node ID -> the node's version map (a CowMap)
        # alloc ID -> Allocation: a `cow.HintedCowMap`, so that the allocs placed together
        # (sharing their IDs' locality hint) share a trie leaf: a plan or a client update
        # batch copies a few dozen leaves, not one per alloc
        self.allocs = EMPTY_HINTED
        # a plain dict {`ALLOC_PREFIX_LEN`-character prefix: IdGroup} per version, never
        # changed once committed (`cow.owned_dict`): written by folds of ~16,384 IDs, which
        # touch each of its 4,096 groups, and deletions: copying it whole once per such
        # transaction beats a trie path per group
        self.allocs_by_prefix: dict[str, Any] = {}
        self.alloc_tail = IdTail()  # this version's new alloc IDs not yet in `allocs_by_prefix`:
        self.alloc_tail_n = 0  # the first `alloc_tail_n` of `alloc_tail.ids`
        # may those hold IDs this version's allocs table does not (deleted since, or written
        # by another version), or an ID twice? (else the fold takes them as they are)
        self.alloc_tail_mixed = False
        self.scheduler_config: SchedulerConfiguration | None = None
        self.indexes: dict[str, int] = {}
        self.index = 0
        # node ID -> (its `allocs:node:<id>` index, its allocs sorted by ID), shared by every
        # later version of these tables (`copy` keeps the reference): see StateSnapshot
        self.node_allocs_cache: dict[str, tuple[int, list]] = {}
        self.touch_log = (object(), 0, ())  # see `log_touched`

    def copy(self) -> "Tables":
        new = Tables.__new__(Tables)
        for name in Tables.__slots__:
            setattr(new, name, getattr(self, name))
        new.indexes = dict(self.indexes)
        return new

    def copy_for(self, gen: int) -> "Tables":
        """`copy()` for a transaction of generation `gen`: the `indexes` dict (~15,000 keys
        at 5,000 nodes) is copied once per generation, as the maps' trie nodes are, not once
        per command (a batch of commands shares one generation: only its last tables are
        committed, or none)."""
        new = Tables.__new__(Tables)
        for name in Tables.__slots__:
            setattr(new, name, getattr(self, name))
        new.indexes = owned_dict(self.indexes, gen)
        return new


class StateReader:
    """Read methods over a `Tables`. Every list is new; objects are shared: do not mutate."""

    __slots__ = ("_t",)

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    @property
    def index(self) -> int:
        return self._t.index

    def table_index(self, name: str) -> int:
        return self._t.indexes.get(name, 0)

    # -- jobs ----------------------------------------------------------
    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        return self._t.jobs.get((namespace, job_id))

    def jobs(self, namespace: str | None = None) -> list[Job]:
        if namespace in (None, "*"):
            found = list(self._t.jobs.values())
        else:
            found = [j for j in self._t.jobs.values() if j.namespace == namespace]
        return sorted(found, key=_by_ns_id)

    def job_versions(self, namespace: str, job_id: str) -> list[Job]:
        """Every kept version, newest first."""
        return list(self._t.job_versions.get((namespace, job_id), ()))

    def job_version(self, namespace: str, job_id: str, version: int) -> Job | None:
        for job in self._t.job_versions.get((namespace, job_id), ()):
            if job.version == version:
                return job
        return None

    def job_summary(self, namespace: str, job_id: str) -> JobSummary | None:
        return self._t.job_summary.get((namespace, job_id))

    # -- evals ---------------------------------------------------------
    def eval_by_id(self, eval_id: str) -> Evaluation | None:
        return self._t.evals.get(eval_id)

    def evals(self, namespace: str | None = None) -> list[Evaluation]:
        if namespace in (None, "*"):
            found = list(self._t.evals.values())
        else:
            found = [e for e in self._t.evals.values() if e.namespace == namespace]
        return sorted(found, key=_by_id)

    def evals_by_job(self, namespace: str, job_id: str) -> list[Evaluation]:
        return self._members(self._t.evals_by_job, (namespace, job_id), self._t.evals)

    # -- allocs --------------------------------------------------------
    def alloc_by_id(self, alloc_id: str) -> Allocation | None:
        return self._t.allocs.get(alloc_id)

    def allocs(self, namespace: str | None = None) -> list[Allocation]:
        if namespace in (None, "*"):
            found = list(self._t.allocs.values())
        else:
            found = [a for a in self._t.allocs.values() if a.namespace == namespace]
        return sorted(found, key=_by_id)

    def allocs_by_job(self, namespace: str, job_id: str) -> list[Allocation]:
        """Every allocation of the job, terminal ones too."""
        return self._members(self._t.allocs_by_job, (namespace, job_id), self._t.allocs)

    def allocs_by_node(self, node_id: str) -> list[Allocation]:
        return self._members(self._t.allocs_by_node, node_id, self._t.allocs)

    def alloc_versions_by_node(self, node_id: str) -> CowMap:
        """The node's `{alloc ID: AllocModifyIndex}` as a read-only `CowMap` (IDs in no
        particular order). A committed state's map is never changed: a later state with an
        identical (`is`) map has the same allocs at the same AllocModifyIndex on the node."""
        return self._t.allocs_by_node.get(node_id) or EMPTY

    def alloc_ids_changed_since(self, node_id: str, since: int) -> list[str]:
        """IDs of the node's allocs with AllocModifyIndex > `since` (all of them when `since`
        <= 0), oldest write first: O(allocs written after `since`) through the map's log, not
        O(allocs on the node). A map without a log (written around `Txn`) is scanned instead."""
        bucket = self._t.allocs_by_node.get(node_id)
        if not bucket:
            return []
        if since <= 0:
            return list(bucket.keys())
        log = bucket._log
        if log is None:
            return scan_changed(bucket, since)
        n = bucket._log_n
        marks = log.marks
        if marks[n - 1] <= since:  # nothing written to the node's map after `since`
            return []
        start = bisect_right(marks, since, 0, n)
        get = bucket.get
        if n - start == 1:
            alloc_id = log.ids[start]
            return [alloc_id] if get(alloc_id, 0) > since else []
        return [i for i in dict.fromkeys(log.ids[start:n]) if get(i, 0) > since]

    def node_allocs_index(self, node_id: str) -> int:
        """Index of the last write that may change what the node's allocs hold
        (`txn.node_usage_key`); the scheduler's per-node usage cache keys on it instead of
        re-reading the allocs."""
        return self._t.indexes.get("allocs:node-usage:" + node_id, 0)

    def allocs_by_eval(self, eval_id: str) -> list[Allocation]:
        return self._members(self._t.allocs_by_eval, eval_id, self._t.allocs)

    # -- periodic launches (`state/periodic_launch.py`) ----------------
    def periodic_launch(self, namespace: str, job_id: str) -> Any:
        """The `PeriodicLaunch` row of a periodic job, or None."""
        return self._t.periodic_launch.get((namespace, job_id))

    def periodic_launches(self) -> list[Any]:
        return sorted(self._t.periodic_launch.values(), key=_by_ns_id)

    def scaling_events(self, namespace: str, job_id: str) -> Any:
        """The `JobScalingEvents` of a job (`state/scaling_events.py`), or None."""
        return self._t.scaling_event.get((namespace, job_id))

    # -- deployments (`state/deployments.py`) --------------------------
    def deployment_by_id(self, deployment_id: str) -> Any:
        return self._t.deployment.get(deployment_id)

    def deployments(self, namespace: str | None = None) -> list[Any]:
        found = [d for d in self._t.deployment.values() if namespace in (None, "*") or d.namespace == namespace]
        return sorted(found, key=_by_id)

    def deployments_by_job(self, namespace: str, job_id: str) -> list[Any]:
        """The job's deployments, newest first."""
        found = [d for d in self._t.deployment.values() if d.namespace == namespace and d.job_id == job_id]
        return sorted(found, key=lambda d: -d.create_index)

    def latest_deployment_by_job(self, namespace: str, job_id: str) -> Any:
        found = self.deployments_by_job(namespace, job_id)
        return found[0] if found else None

    # -- nodes and config ----------------------------------------------
    def node_by_id(self, node_id: str) -> Node | None:
        return self._t.nodes.get(node_id)

    def nodes(self) -> list[Node]:
        return sorted(self._t.nodes.values(), key=_by_id)

    def nodes_token(self) -> object:
        """The node table as an identity token: two snapshots return the same object (`is`)
        only when no node was written between them (the scheduler caches per-eval node
        work on it)."""
        return self._t.nodes

    def liveness_token(self) -> object:
        """The per-job count of non-terminal allocs and evals as an identity token: the same
        object (`is`) in two snapshots when no alloc or eval went between terminal and not
        (nor was added or deleted non-terminal) between them, or such changes cancelled out
        per job (the plan applier's usage carrier skips client updates on it)."""
        return self._t.job_live

    def scheduler_config(self) -> SchedulerConfiguration:
        """The stored configuration, or Nomad's defaults (indexes 0) before one is set."""
        return self._t.scheduler_config or _DEFAULT_SCHEDULER_CONFIG

    def by_prefix(self, table: str, prefix: str, ns: str | None = None) -> list[Any]:
        """Objects of `table` (jobs, evals, allocs, nodes) whose ID starts with `prefix`."""
        if table not in PREFIX_TABLES:
            raise ValueError(f"table {table!r} has no ID prefix lookup; use one of {', '.join(PREFIX_TABLES)}")
        objects: CowMap = getattr(self._t, table)
        if table in ("allocs", "evals") and prefix:
            groups: Any = getattr(self._t, f"{table}_by_prefix")  # (a CowMap, or the allocs' dict)
            size = ALLOC_PREFIX_LEN if table == "allocs" else PREFIX_LEN
            if len(prefix) >= size:
                keys = [prefix[:size]]
            else:
                keys = [k for k in groups.keys() if k.startswith(prefix)]
            ids = []
            for k in keys:
                bucket = groups.get(k) or ()
                ids.extend(i for i in (bucket if type(bucket) is tuple else bucket.keys()) if i.startswith(prefix))
            if table == "allocs" and self._t.alloc_tail_n:  # and the IDs not yet in the groups
                t = self._t
                ids.extend(i for i in t.alloc_tail.ids[:t.alloc_tail_n] if i.startswith(prefix))
                ids = dict.fromkeys(ids)  # (an ID deleted and added again is there twice)
            found = [o for o in map(objects.get, ids) if o is not None]
        else:
            found = [o for o in objects.values() if o.id.startswith(prefix)]
        if ns not in (None, "*") and table != "nodes":
            found = [o for o in found if o.namespace == ns]
        return sorted(found, key=_by_ns_id if table == "jobs" else _by_id)

    @staticmethod
    def _members(index: CowMap, key: Any, objects: CowMap) -> list[Any]:
        bucket = index.get(key)
        if not bucket:
            return []
        get = objects.get
        return [get(i) for i in sorted(bucket.keys())]  # by ID: the keys are the IDs

    # -- many nodes' usage indexes at once (the scheduler reads every candidate's per eval)
    @staticmethod
    def node_usage_keys(node_ids: list[str]) -> list[str]:
        """Keys for `node_allocs_indexes`, made once by a caller that reads the same nodes often:
        the very string objects the writers touch (`txn._node_keys`), so that a lookup in
        `indexes` or in a `touch_log` set matches by identity."""
        from .txn import _node_keys  # (txn imports this module)

        return [_node_keys(node_id)[1] for node_id in node_ids]  # txn.node_usage_key

    def node_allocs_indexes(self, keys: list[str]) -> list[int]:
        """`node_allocs_index` of each node, `keys` from `node_usage_keys(node_ids)`."""
        get = self._t.indexes.get
        return [get(key, 0) for key in keys]

    def node_usage_versions(self, keys: list[str]) -> list[int | None]:
        """`node_allocs_indexes` in one C-level pass, None (not 0) for a node whose allocs
        were never written: for a caller that compares the values (the scheduler's
        `nodetable.Columns`, every candidate per eval)."""
        return list(map(self._t.indexes.get, keys))

    def touch_log(self) -> tuple:
        """(lineage, floor, ((index, keys touched), ...)): the index keys each of the last
        commits wrote (`log_touched`), for a reader that compares index values between two
        versions: a key not touched by a commit after `floor` and up to this version's index
        has the value it had at any version in between. `lineage` is a new object per
        restored or new state (its log says nothing about another's)."""
        return self._t.touch_log


class StateSnapshot(StateReader):
    """A consistent, immutable view of the state at `index`."""

    __slots__ = ()

    def allocs_by_node(self, node_id: str) -> list[Allocation]:
        """As `StateReader.allocs_by_node`, from a cache keyed by the node's alloc index: a
        committed state with the same `allocs:node:<id>` index has the same allocs on the
        node (every alloc write touches that key). The scheduler and the plan applier ask
        for the allocs of every node they consider; listing them was ~20% of the server's
        time in W1."""
        t = self._t
        version = t.indexes.get("allocs:node:" + node_id, 0)
        hit = t.node_allocs_cache.get(node_id)
        if hit is not None and hit[0] == version:
            return list(hit[1])
        found = super().allocs_by_node(node_id)
        if version:
            t.node_allocs_cache[node_id] = (version, found)
        return list(found)

    def __repr__(self) -> str:
        t = self._t
        return f"StateSnapshot(index={t.index}, jobs={len(t.jobs)}, allocs={len(t.allocs)}, nodes={len(t.nodes)})"
