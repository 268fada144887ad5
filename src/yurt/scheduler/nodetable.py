"""Per-node work kept across evaluations while the node table does not change.

Every evaluation of a service job used to list and sort all nodes, filter the ready
ones, and read every candidate's cached usage (`usage.cached_base`) to give it a class
id (`window.ClassWindow`): O(nodes) Python work per evaluation, ~40% of an eval of
count 1,000 on 5,000 nodes. Heartbeats do not write the node table, so for most
evaluations it is the same object as for the previous one (`StateReader.nodes_token`).
`NodeTable` keeps, for one version of it:

- the nodes sorted by ID and `ready_nodes(...)` per (datacenters, node pool);
- per candidate list, each node's usage index (`node_allocs_index`) and a small int
  naming what the class walk reads of its usage (`usage_keys`): only nodes whose index
  moved since the last evaluation are read again.

The lists handed out are never changed afterwards (several scheduler threads share the
table); an update builds new ones.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from itertools import compress
from operator import ne

from .feasible import CandidateNodes, ready_nodes
from .usage import cached_base, node_base

_KEY_LIMIT = 100_000  # distinct usage keys kept per table before they are counted again


class Columns:
    """Usage keys of one candidate list (nodes sorted by ID) across evaluations."""

    def __init__(self, nodes: list) -> None:
        self.nodes = nodes
        self.ids = [n.id for n in nodes]
        self.index = {node_id: j for j, node_id in enumerate(self.ids)}
        self.keys_of: dict[tuple, int] = {}  # usage key -> its int
        self.key_list: list[tuple] = []  # int -> (usage key, position of a node that has it)
        self.state: tuple[list[int], list[int]] | None = None  # (usage indexes, key ints) per node
        self._lock = threading.Lock()  # scheduler threads share the table

    def usage_keys(self, snapshot) -> tuple[list[int], list[tuple]]:
        """Per node (sorted order): the int of (computed class, node class, cap cpu, cap
        memory, free cpu, free memory, free disk, ports taken, min port, max port) of what
        its existing allocs hold in `snapshot`; and the list those ints index (entries:
        (key, position of a node that has it)), which only grows."""
        versions = list(map(snapshot.node_allocs_index, self.ids))
        with self._lock:
            return self._update(snapshot, versions), self.key_list

    def _update(self, snapshot, versions: list[int]) -> list[int]:
        state = self.state
        if state is not None and len(self.key_list) < _KEY_LIMIT:
            old_versions, old_keys = state
            changed = list(compress(range(len(versions)), map(ne, versions, old_versions)))
            if not changed:
                return old_keys
            keys = list(old_keys)
        else:
            if state is not None:
                self.keys_of, self.key_list = {}, []
            changed = range(len(versions))
            keys = [0] * len(versions)
        nodes, keys_of, key_list = self.nodes, self.keys_of, self.key_list
        for j in changed:
            node, version = nodes[j], versions[j]
            base = cached_base(node, version)
            if base is None:
                base = node_base(node, snapshot.allocs_by_node(node.id), version)
            key = (node.computed_class, node.node_class, base.cap_cpu, base.cap_mem, base.free_cpu, base.free_mem,
                   base.free_disk, len(base.ports), base.min_port, base.max_port)
            k = keys_of.get(key)
            if k is None:
                k = keys_of[key] = len(key_list)
                key_list.append((key, j))
            keys[j] = k
        self.state = (versions, keys)
        return keys


class NodeTable:
    """What evaluations of one node-table version share (see the module docstring)."""

    def __init__(self, token: object, nodes: list) -> None:
        self.token = token  # held: its id is not reused while this table is cached
        self.nodes = nodes
        self._ready: dict[tuple, tuple[CandidateNodes, Columns]] = {}

    def ready(self, job) -> tuple[CandidateNodes, Columns]:
        """`ready_nodes(nodes, job)` (read-only: copy before shuffling) and its columns."""
        key = (tuple(job.datacenters or ()), job.node_pool)
        entry = self._ready.get(key)
        if entry is None:
            ready = ready_nodes(self.nodes, job)
            entry = self._ready[key] = (ready, Columns(ready.nodes))
        return entry


_TABLE: NodeTable | None = None


def node_table(snapshot) -> NodeTable | None:
    """The table for the snapshot's nodes, or None when the snapshot cannot say whether
    its nodes changed (no `nodes_token`) or has no per-node usage index."""
    global _TABLE
    token_of = getattr(snapshot, "nodes_token", None)
    if token_of is None or getattr(snapshot, "node_allocs_index", None) is None:
        return None
    token = token_of()
    table = _TABLE
    if table is None or table.token is not token:
        table = _TABLE = NodeTable(token, snapshot.nodes())
    return table


def shuffled(ready: CandidateNodes, rng) -> tuple[CandidateNodes, list[int]]:
    """A copy of `ready` whose nodes are shuffled exactly as `rng.shuffle(ready.nodes)`
    would, and the permutation (position -> index in `ready.nodes`)."""
    perm = list(range(len(ready.nodes)))
    rng.shuffle(perm)  # the same draws and swaps as shuffling the nodes themselves
    return replace(ready, nodes=list(map(ready.nodes.__getitem__, perm))), perm
