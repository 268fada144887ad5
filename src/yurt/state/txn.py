"""A state transaction: writes to the tables that keep every secondary index right.

`Txn` works on a copy of the committed `Tables` under a generation number no other
transaction uses; `commit()` hands back the new `Tables`. Dropping a `Txn` leaves the
committed state as it was, so a command is applied entirely or not at all.
"""

from collections.abc import Callable, Iterable
from typing import Any

from yurt.structs import (
    ALLOC_DESIRED_EVICT,
    ALLOC_DESIRED_STOP,
    Allocation,
    Evaluation,
    Job,
    JobSummary,
    Node,
    SchedulerConfiguration,
)
from yurt.structs.alloc import CLIENT_TERMINAL_STATUSES

from .cow import EMPTY, bucket_add, bucket_add_many, bucket_remove, group_without, grown_group, owned_dict
from .tables import ALLOC_PREFIX_LEN, ALLOC_TAIL_FOLD, PREFIX_LEN, IdTail, StateReader, Tables, log_touched, log_version_writes


_LOOKUP = object()
_SERVER_TERMINAL = (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)  # `Allocation.server_terminal`


def _grown_group_unseen(group, members: list[str]):
    """`grown_group` with only the members `group` does not hold yet."""
    if group:
        held = set(group.ids)
        members = [m for m in members if m not in held]
    return grown_group(group, members)


class StateError(Exception):
    """A command that cannot be applied to the current state (nothing was changed)."""


def node_allocs_key(node_id: str) -> str:
    """The index key that changes whenever an alloc on this node does: a blocking query on
    one node's allocs waits on it, so other nodes' changes do not wake it."""
    return "allocs:node:" + node_id


# node ID -> (its `node_allocs_key`, its `node_usage_key`): a plan touches both keys of ~1,000
# nodes and a client update those of ~150; made once, the same string objects each time (no
# concatenation and no hashing of a new string per write; the `indexes` dict then finds its
# own key by identity). Cleared when it outgrows any fleet (node IDs of deleted nodes).
_NODE_KEYS: dict[str, tuple[str, str]] = {}
_NODE_KEYS_MAX = 100_000


def _node_keys(node_id: str) -> tuple[str, str]:
    """(`node_allocs_key(node_id)`, `node_usage_key(node_id)`), cached."""
    keys = _NODE_KEYS.get(node_id)
    if keys is None:
        if len(_NODE_KEYS) >= _NODE_KEYS_MAX:
            _NODE_KEYS.clear()
        keys = _NODE_KEYS[node_id] = (node_allocs_key(node_id), node_usage_key(node_id))
    return keys


def node_usage_key(node_id: str) -> str:
    """The index key that changes only when what the node's allocs hold may change (an alloc
    added, removed, turning terminal, or with new resources), not on every status report:
    the scheduler's per-node usage cache keys on it."""
    return "allocs:node-usage:" + node_id


def _same_usage(old: Allocation, new: Allocation) -> bool:
    """Do both hold the same on the node (given both are terminal, or both are not)?"""
    return (old.job_id == new.job_id and old.namespace == new.namespace
            and old.task_group == new.task_group
            and (old.allocated_resources is new.allocated_resources
                 or old.allocated_resources == new.allocated_resources)
            and (new.allocated_resources is not None or old.job is new.job))


def node_key(node_id: str) -> str:
    """The index key that changes whenever this node does (or is deleted): a blocking query
    on one node waits on it, so writes to other nodes do not wake it."""
    return "nodes:" + node_id


def job_key(obj: Any) -> tuple[str, str]:
    """The `(namespace, job_id)` key of a job, alloc, eval or summary."""
    return (obj.namespace, obj.job_id if hasattr(obj, "job_id") else obj.id)


class Txn(StateReader):
    __slots__ = ("gen", "index", "_live_delta", "touched", "_new_allocs", "_new_ids")

    def __init__(self, committed: Tables, gen: int, index: int) -> None:
        super().__init__(committed.copy_for(gen))
        self.gen = gen
        self.index = index
        self._t.index = index
        # per job: change of (non-terminal allocs, non-terminal evals), written at commit
        self._live_delta: dict[tuple[str, str], list[int]] = {}
        self.touched: set[str] = set()  # table (and per-node alloc) index keys written
        # new allocs whose secondary-index entries wait for `index_new_allocs` (None: no batch)
        self._new_allocs: list[Allocation] | None = None
        self._new_ids: set[str] = set()

    def commit(self) -> Tables:
        if self._new_allocs:
            self.index_new_allocs()
        t = self._t
        if t.alloc_tail_n > ALLOC_TAIL_FOLD:
            self._fold_alloc_tail()
        for key, (allocs, evals) in self._live_delta.items():
            if not allocs and not evals:
                continue
            a, e = t.job_live.get(key, (0, 0))
            a, e = a + allocs, e + evals
            t.job_live = t.job_live.assoc(key, (a, e), self.gen) if a or e else t.job_live.dissoc(key, self.gen)
        self._live_delta = {}
        if self.touched:
            log_touched(t, self.index, self.touched)  # (the scheduler's node table reads it)
        return t

    def touch(self, table: str) -> None:
        self._t.indexes[table] = self.index
        self.touched.add(table)

    # -- jobs ----------------------------------------------------------
    def put_job(self, job: Job) -> None:
        t = self._t
        t.jobs = t.jobs.assoc((job.namespace, job.id), job, self.gen)
        self.touch("jobs")

    def delete_job(self, namespace: str, job_id: str) -> None:
        t = self._t
        key = (namespace, job_id)
        t.jobs = t.jobs.dissoc(key, self.gen)
        t.job_versions = t.job_versions.dissoc(key, self.gen)
        t.job_summary = t.job_summary.dissoc(key, self.gen)
        self.touch("jobs")
        self.touch("job_versions")
        self.touch("job_summary")

    def put_job_versions(self, namespace: str, job_id: str, versions: tuple[Job, ...]) -> None:
        t = self._t
        t.job_versions = t.job_versions.assoc((namespace, job_id), versions, self.gen)
        self.touch("job_versions")

    def put_summary(self, summary: JobSummary) -> None:
        t = self._t
        t.job_summary = t.job_summary.assoc((summary.namespace, summary.job_id), summary, self.gen)
        self.touch("job_summary")

    def job_liveness(self, namespace: str, job_id: str) -> tuple[int, int]:
        """(non-terminal allocs, non-terminal evals) of the job."""
        key = (namespace, job_id)
        a, e = self._t.job_live.get(key, (0, 0))
        delta = self._live_delta.get(key)
        return (a + delta[0], e + delta[1]) if delta else (a, e)

    def has_allocs(self, namespace: str, job_id: str) -> bool:
        return bool(self._t.allocs_by_job.get((namespace, job_id)))

    def has_evals(self, namespace: str, job_id: str) -> bool:
        return bool(self._t.evals_by_job.get((namespace, job_id)))

    def _add_liveness(self, key: tuple[str, str], allocs: int, evals: int) -> None:
        if not allocs and not evals:
            return
        delta = self._live_delta.get(key)
        if delta is None:
            self._live_delta[key] = [allocs, evals]
        else:
            delta[0] += allocs
            delta[1] += evals

    # -- evals ---------------------------------------------------------
    def put_eval(self, ev: Evaluation) -> None:
        t, gen = self._t, self.gen
        old = t.evals.get(ev.id)
        key = job_key(ev)
        if old is not None and job_key(old) != key:
            self._unindex_eval(old)
            old = None
        if old is None:
            t.evals_by_job = bucket_add(t.evals_by_job, key, ev.id, gen)
            t.evals_by_prefix = bucket_add(t.evals_by_prefix, ev.id[:PREFIX_LEN], ev.id, gen)
        live_delta = int(not ev.terminal) - (int(not old.terminal) if old is not None else 0)
        self._add_liveness(key, 0, live_delta)
        t.evals = t.evals.assoc(ev.id, ev, gen)
        self.touch("evals")

    def put_evals(self, evals: list[Evaluation], olds: list[Evaluation | None]) -> None:
        """`put_eval` of each of `evals` (distinct IDs), `olds[i]` being the stored eval it
        replaces (None: new) as just read here: the table and each job's bucket are written
        in one pass each (a registration storm's evals and the broker's cancels)."""
        t, gen = self._t, self.gen
        new_by_job: dict[tuple[str, str], list] = {}
        new_by_prefix: dict[str, list] = {}  # 256 groups: one bucket write each, not one per eval
        for ev, old in zip(evals, olds):
            key = (ev.namespace, ev.job_id)
            if old is not None and (old.namespace, old.job_id) != key:
                self._unindex_eval(old)
                old = None
            if old is None:
                new_by_job.setdefault(key, []).append((ev.id, True))
                new_by_prefix.setdefault(ev.id[:PREFIX_LEN], []).append((ev.id, True))
            self._add_liveness(key, 0, int(not ev.terminal) - (int(not old.terminal) if old is not None else 0))
        for key, members in new_by_job.items():
            t.evals_by_job = bucket_add_many(t.evals_by_job, key, members, gen)
        for prefix, members in new_by_prefix.items():
            t.evals_by_prefix = bucket_add_many(t.evals_by_prefix, prefix, members, gen)
        t.evals = t.evals.update([(ev.id, ev) for ev in evals], gen)
        self.touch("evals")

    def delete_eval(self, eval_id: str) -> Evaluation | None:
        t = self._t
        old = t.evals.get(eval_id)
        if old is not None:
            self._unindex_eval(old)
            t.evals = t.evals.dissoc(eval_id, self.gen)
        self.touch("evals")
        return old

    def _unindex_eval(self, old: Evaluation) -> None:
        t = self._t
        key = job_key(old)
        t.evals_by_job = bucket_remove(t.evals_by_job, key, old.id, self.gen)
        t.evals_by_prefix = bucket_remove(t.evals_by_prefix, old.id[:PREFIX_LEN], old.id, self.gen)
        self._add_liveness(key, 0, -int(not old.terminal))

    # -- allocs --------------------------------------------------------
    def put_alloc(self, alloc: Allocation, old: Any = _LOOKUP) -> None:
        """Store `alloc`; `old`: the stored alloc it replaces (None: new), when the caller
        has just read it in this transaction."""
        t, gen = self._t, self.gen
        if old is _LOOKUP:
            old = t.allocs.get(alloc.id)
        key = (alloc.namespace, alloc.job_id)
        live = int(not alloc.terminal)
        node_id = alloc.node_id
        if old is None:
            if self._new_allocs is not None:  # indexed, and its node's keys touched, by index_new_allocs
                self._new_allocs.append(alloc)
                self._new_ids.add(alloc.id)
                self._add_liveness(key, live, 0)
                t.allocs = t.allocs.assoc(alloc.id, alloc, gen)
                return
            self._index_alloc(alloc, key)
            self._tail_append((alloc.id,))
            self._add_liveness(key, live, 0)
            moved = same_usage = False
        elif old.id in self._new_ids:  # new in this batch: its index entries first
            self.index_new_allocs()
            self.batch_new_allocs()
            self.put_alloc(alloc, old)
            return
        else:
            old_live = int(not old.terminal)
            moved = old.node_id != node_id
            if moved or old.job_id != alloc.job_id or old.namespace != alloc.namespace or old.eval_id != alloc.eval_id:
                self._unindex_alloc(old)
                self._index_alloc(alloc, key)
                self._add_liveness(key, live, 0)
            else:
                self._add_liveness(key, live - old_live, 0)
                if old.alloc_modify_index != alloc.alloc_modify_index:
                    self._node_map_add(node_id, alloc.id, alloc.alloc_modify_index)
            same_usage = not moved and old_live == live and _same_usage(old, alloc)
        t.allocs = t.allocs.assoc(alloc.id, alloc, gen)
        self.touch("allocs")
        allocs_key, usage_key = _node_keys(node_id)
        self.touch(allocs_key)
        if moved:
            for key in _node_keys(old.node_id):
                self.touch(key)
        if not same_usage:
            self.touch(usage_key)

    def rewrite_allocs(self, updates: Iterable[Any], merge: Callable[[Allocation, Any], Allocation]) -> None:
        """Store `merge(stored, update)` in place of the stored alloc of each update's `.id`
        (an ID not stored is skipped; a later update of one ID merges into the earlier's
        result): what `put_alloc(merge(stored, update), stored)` of each does, in one walk
        down the allocs table per alloc (a lookup and a write walked it twice), with each
        node's keys touched once. For clients' reports: `merge` keeps what the secondary
        indexes and a node's usage read (ID, namespace, job ID and job, eval, node, task
        group, resources, desired status, AllocModifyIndex) as they are; only the liveness
        (a client-terminal status) may change."""
        if self._new_allocs is not None:  # (a batch of new allocs: `put_alloc` indexes it first)
            for update in updates:
                old = self._t.allocs.get(update.id)
                if old is not None:
                    self.put_alloc(merge(old, update), old)
            return
        t, gen = self._t, self.gen
        table = t.allocs
        if table._gen != gen:
            table = t.allocs = table._owned(gen)
        walk = table._writable_path
        nodes: set[str] = set()
        usage_nodes: set[str] = set()
        terminal = CLIENT_TERMINAL_STATUSES
        for update in updates:
            alloc_id = update.id
            leaf = walk(alloc_id, gen)[0]  # (an ID not stored: the path is copied, nothing written)
            old = leaf.get(alloc_id)
            if old is None:
                continue
            new = leaf[alloc_id] = merge(old, update)
            node_id = old.node_id
            nodes.add(node_id)
            old_status, status = old.client_status, new.client_status
            if old_status is not status and old_status != status and old.desired_status not in _SERVER_TERMINAL:
                was_live, live = old_status not in terminal, status not in terminal
                if was_live != live:  # `put_alloc`'s liveness and usage-key rule (the usage is otherwise the same)
                    self._add_liveness((old.namespace, old.job_id), live - was_live, 0)
                    usage_nodes.add(node_id)
        if nodes:
            keys = [_node_keys(node_id)[0] for node_id in nodes]
            if usage_nodes:
                keys += [_node_keys(node_id)[1] for node_id in usage_nodes]
            self._touch_keys(keys)
            self.touch("allocs")

    def batch_new_allocs(self) -> None:
        """From now on `put_alloc` of a new alloc writes the allocs table at once but
        leaves its secondary-index entries (by job, node, eval, ID prefix) until
        `index_new_allocs`, which writes them a bucket at a time. Only for code that does
        not read those indexes in between (`upsert_allocs`); a later write to such an
        alloc, or its deletion, indexes the batch first."""
        if self._new_allocs is None:
            self._new_allocs = []

    def index_new_allocs(self) -> None:
        """Write the index entries of the batched new allocs and end the batch."""
        allocs, self._new_allocs = self._new_allocs, None
        self._new_ids = set()
        if not allocs:
            return
        t, gen = self._t, self.gen
        by_job: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        by_node: dict[str, list[tuple[str, int]]] = {}
        by_eval: dict[str, list[tuple[str, bool]]] = {}
        for alloc in allocs:
            alloc_id = alloc.id
            member = (alloc_id, True)
            by_job.setdefault((alloc.namespace, alloc.job_id), []).append(member)
            by_node.setdefault(alloc.node_id, []).append((alloc_id, alloc.alloc_modify_index))
            by_eval.setdefault(alloc.eval_id, []).append(member)
        self._tail_append([alloc.id for alloc in allocs])
        for name, groups in (("allocs_by_job", by_job), ("allocs_by_eval", by_eval)):
            index = getattr(t, name)
            for key, members in groups.items():
                index = bucket_add_many(index, key, members, gen)
            setattr(t, name, index)
        by_node_map = t.allocs_by_node = t.allocs_by_node.owned(gen)
        maps = by_node_map._d
        node_keys = []
        for node_id, members in by_node.items():
            before = maps.get(node_id)
            bucket = before if before is not None else EMPTY
            if len(members) == 1:
                (alloc_id, alloc_modify_index), = members
                bucket = bucket.assoc(alloc_id, alloc_modify_index, gen)
            else:
                bucket = bucket.update(members, gen)
            log_version_writes(bucket, before, members)
            maps[node_id] = bucket
            node_keys += _node_keys(node_id)
        self._touch_keys(node_keys)  # `touch`, for the nodes' new allocs
        self.touch("allocs")

    def _touch_keys(self, keys: list[str]) -> None:
        """`touch` of each of `keys`, in two C-level passes (the per-node keys of a plan's
        ~900 nodes or a client update's ~150)."""
        self._t.indexes.update(dict.fromkeys(keys, self.index))
        self.touched.update(keys)

    def _tail_append(self, alloc_ids) -> None:
        """New alloc IDs wait in `alloc_tail` for `_fold_alloc_tail`."""
        t = self._t
        tail = t.alloc_tail.ids
        if len(tail) != t.alloc_tail_n:
            t.alloc_tail_mixed = True  # another version wrote after this one's entries
        tail.extend(alloc_ids)
        t.alloc_tail_n = len(tail)

    def _fold_alloc_tail(self) -> None:
        """Put the IDs waiting in `alloc_tail` that the allocs table holds into their
        `allocs_by_prefix` groups (a batch: each group and trie leaf written once) and
        start an empty tail."""
        t = self._t
        ids, n, mixed = t.alloc_tail.ids, t.alloc_tail_n, t.alloc_tail_mixed
        t.alloc_tail, t.alloc_tail_n, t.alloc_tail_mixed = IdTail(), 0, False
        by_prefix: dict[str, list[str]] = {}
        if mixed:
            allocs = t.allocs
            for alloc_id in dict.fromkeys(ids[:n]):  # (an ID deleted and added again is there twice)
                if alloc_id in allocs:  # (not: deleted since, or written by another version)
                    by_prefix.setdefault(alloc_id[:ALLOC_PREFIX_LEN], []).append(alloc_id)
            # an ID another version wrote (a dropped transaction) may be in its group already
            combine = _grown_group_unseen
        else:
            for alloc_id in ids[:n] if n < len(ids) else ids:
                by_prefix.setdefault(alloc_id[:ALLOC_PREFIX_LEN], []).append(alloc_id)
            combine = grown_group
        groups = owned_dict(t.allocs_by_prefix, self.gen)  # (a copy of 4,096 pointers per fold)
        get = groups.get
        for prefix, members in by_prefix.items():
            groups[prefix] = combine(get(prefix), members)
        t.allocs_by_prefix = groups

    def _index_alloc(self, alloc: Allocation, key: tuple[str, str]) -> None:
        t, gen = self._t, self.gen
        t.allocs_by_job = bucket_add(t.allocs_by_job, key, alloc.id, gen)
        self._node_map_add(alloc.node_id, alloc.id, alloc.alloc_modify_index)
        t.allocs_by_eval = bucket_add(t.allocs_by_eval, alloc.eval_id, alloc.id, gen)

    def _node_map_add(self, node_id: str, alloc_id: str, alloc_modify_index: int) -> None:
        """Set the alloc's AllocModifyIndex in its node's version map (`allocs_by_node`)
        and log the write there (`tables.NodeAllocLog`)."""
        t, gen = self._t, self.gen
        maps = t.allocs_by_node = t.allocs_by_node.owned(gen)
        before = maps._d.get(node_id)
        bucket = maps._d[node_id] = (EMPTY if before is None else before).assoc(alloc_id, alloc_modify_index, gen)
        log_version_writes(bucket, before, ((alloc_id, alloc_modify_index),))

    def _unindex_alloc(self, old: Allocation) -> None:
        t, gen = self._t, self.gen
        t.allocs_by_job = bucket_remove(t.allocs_by_job, job_key(old), old.id, gen)
        before = t.allocs_by_node.get(old.node_id)
        t.allocs_by_node = bucket_remove(t.allocs_by_node, old.node_id, old.id, gen)
        after = t.allocs_by_node.get(old.node_id)
        if after is not None and after is not before:  # (not: a committed map, or written in place)
            log_version_writes(after, before, ())  # the log of the map it was removed from
        t.allocs_by_eval = bucket_remove(t.allocs_by_eval, old.eval_id, old.id, gen)
        self._add_liveness(job_key(old), -int(not old.terminal), 0)

    def delete_alloc(self, alloc_id: str) -> Allocation | None:
        t, gen = self._t, self.gen
        old = t.allocs.get(alloc_id)
        if old is not None and alloc_id in self._new_ids:
            self.index_new_allocs()
        if old is not None:
            self._unindex_alloc(old)
            self._unindex_prefix(alloc_id)
            if t.alloc_tail_n:
                t.alloc_tail_mixed = True  # (it may be waiting there)
            t.allocs = t.allocs.dissoc(alloc_id, gen)
            for key in _node_keys(old.node_id):
                self.touch(key)
        self.touch("allocs")
        return old

    def _unindex_prefix(self, alloc_id: str) -> None:
        """Remove the ID from its `allocs_by_prefix` group (dropped when it empties)."""
        t = self._t
        prefix = alloc_id[:ALLOC_PREFIX_LEN]
        group = t.allocs_by_prefix.get(prefix)
        if not group or alloc_id not in group:
            return
        groups = t.allocs_by_prefix = owned_dict(t.allocs_by_prefix, self.gen)
        rest = group_without(group, alloc_id)
        if rest is None:
            del groups[prefix]
        else:
            groups[prefix] = rest

    # -- periodic launches ---------------------------------------------
    def put_periodic_launch(self, launch: Any) -> None:
        t = self._t
        t.periodic_launch = t.periodic_launch.assoc((launch.namespace, launch.id), launch, self.gen)
        self.touch("periodic_launch")

    def delete_periodic_launch(self, namespace: str, job_id: str) -> None:
        t = self._t
        if t.periodic_launch.get((namespace, job_id)) is not None:
            t.periodic_launch = t.periodic_launch.dissoc((namespace, job_id), self.gen)
            self.touch("periodic_launch")

    def put_scaling_events(self, events: Any) -> None:
        t = self._t
        t.scaling_event = t.scaling_event.assoc((events.namespace, events.job_id), events, self.gen)
        self.touch("scaling_event")

    def delete_scaling_events(self, namespace: str, job_id: str) -> None:
        t = self._t
        if t.scaling_event.get((namespace, job_id)) is not None:
            t.scaling_event = t.scaling_event.dissoc((namespace, job_id), self.gen)
            self.touch("scaling_event")

    # -- deployments ---------------------------------------------------
    def put_deployment(self, deployment: Any) -> None:
        t = self._t
        t.deployment = t.deployment.assoc(deployment.id, deployment, self.gen)
        self.touch("deployment")

    def delete_deployment(self, deployment_id: str) -> None:
        t = self._t
        if t.deployment.get(deployment_id) is not None:
            t.deployment = t.deployment.dissoc(deployment_id, self.gen)
            self.touch("deployment")

    # -- nodes and config ----------------------------------------------
    def put_node(self, node: Node) -> None:
        t = self._t
        t.nodes = t.nodes.assoc(node.id, node, self.gen)
        self.touch("nodes")
        self.touch(node_key(node.id))

    def delete_node(self, node_id: str) -> None:
        t = self._t
        t.nodes = t.nodes.dissoc(node_id, self.gen)
        self.touch("nodes")
        self.touch(node_key(node_id))

    def stored_scheduler_config(self) -> SchedulerConfiguration | None:
        return self._t.scheduler_config

    def put_scheduler_config(self, config: SchedulerConfiguration) -> None:
        self._t.scheduler_config = config
        self.touch("scheduler_config")
