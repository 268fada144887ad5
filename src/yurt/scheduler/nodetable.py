"""Per-node work kept across evaluations while the node table does not change.

Every evaluation of a service job used to list and sort all nodes, filter the ready
ones, and read every candidate's cached usage (`usage.cached_base`) to give it a class
id (`window.ClassWindow`): O(nodes) Python work per evaluation, ~40% of an eval of
count 1,000 on 5,000 nodes. Heartbeats do not write the node table, so for most
evaluations it is the same object as for the previous one (`StateReader.nodes_token`).
`NodeTable` keeps, for one version of it:

- the nodes sorted by ID and `ready_nodes(...)` per (datacenters, node pool);
- per candidate list, each node's usage index (`node_allocs_index`), its `NodeBase` and a
  small int naming what the class walk reads of it (`usage_keys`): only nodes whose index
  moved since the last evaluation are read again, and a node back at the version it had
  before that (an older snapshot of another scheduler thread) is not read at all.

The lists handed out are never changed afterwards (several scheduler threads share the
table); an update builds new ones.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from itertools import compress
from operator import ne
from random import Random

from .feasible import CandidateNodes, ready_nodes
from .usage import NodeBase, cached_base, node_base

_KEY_LIMIT = 100_000  # distinct usage keys kept per table before they are counted again
_UNCACHED = (None, None, -1)  # the fingerprint of a NodeBase kept out of the usage cache (never matches)


class Columns:
    """Usage keys and bases of one candidate list (nodes sorted by ID) across evaluations.

    Per node it keeps two versions: the one the last evaluation read (handed out as lists,
    never changed afterwards) and the one before it (kept in place). Scheduler threads
    evaluate on snapshots of different ages, so the state read flips between an older and a
    newer version of the nodes written in between; the one before is taken back as it was,
    without asking the usage cache (which may by then hold a third version of the node)."""

    def __init__(self, nodes: list) -> None:
        self.nodes = nodes
        self.ids = [n.id for n in nodes]
        self.index = {node_id: j for j, node_id in enumerate(self.ids)}
        self.keys_of: dict[tuple, int] = {}  # (fixed int, free cpu, memory, disk, ports taken) -> usage key int
        self._fixed: list = [None] * len(nodes)  # per node: (fixed int, (computed class, node class, capacity, ports))
        self._statics: dict[tuple, int] = {}  # fixed part -> its int
        self.key_list: list[tuple] = []  # int -> (usage key, position of a node that has it)
        # (usage indexes, key ints, NodeBases) per node, as last handed out
        self.state: tuple[list[int], list[int], list] | None = None
        self._before: tuple[list[int], list[int], list] | None = None  # the same, one version earlier
        self._newest = -1  # the highest snapshot index read
        self._index_keys: list | None = None  # the state's keys of the nodes' usage indexes
        self._key_pos: dict[str, int] | None = None  # usage index key -> node (sorted order)
        self._read: tuple | None = None  # (log lineage, snapshot index) whose versions `state` holds
        self._log: tuple | None = None  # the newest snapshot's touch log read, and its index
        self._lock = threading.Lock()  # scheduler threads share the table
        self.scans = 0  # usage index reads of every node (the others read only the moved ones)

    def usage_keys(self, snapshot) -> tuple[list[int], list[tuple], list]:
        """Per node (sorted order): the int of (computed class, node class, cap cpu, cap
        memory, free cpu, free memory, free disk, ports taken, min port, max port) of what
        its existing allocs hold in `snapshot`; the list those ints index (entries: (key,
        position of a node that has it)), which only grows; and the node's `NodeBase` in
        `snapshot` (what `UsageTracker.peek` returns for a node the plan has not touched)."""
        bulk = getattr(snapshot, "node_usage_versions", None)
        if bulk is None:
            versions = list(map(snapshot.node_allocs_index, self.ids))
            with self._lock:
                keys, bases = self._update(snapshot, versions)
                return keys, self.key_list, bases
        if self._index_keys is None:
            self._index_keys = snapshot.node_usage_keys(self.ids)
        log_of, index = getattr(snapshot, "touch_log", None), getattr(snapshot, "index", None)
        log = None if log_of is None or index is None else log_of()
        with self._lock:
            moved = self._moved(log, index, bulk)
            if moved is None:  # one call for all nodes, with keys made once (~6% of an eval per node)
                self.scans += 1
                versions, changed = bulk(self._index_keys), None  # None: never written (index 0)
            else:
                versions, changed = moved
            keys, bases = self._update(snapshot, versions, changed)
            if log is None:
                self._read = None
            else:
                self._read = (log[0], index)
                held = self._log
                if held is None or held[1] < index or held[0][0] is not log[0]:
                    self._log = (log, index)  # the newest log seen: it covers older snapshots' spans
            return keys, self.key_list, bases

    def _moved(self, log: tuple | None, index: int | None, bulk) -> tuple[list, list[int]] | None:
        """(`versions` of every node in the snapshot at `index` whose touch log is `log`, the
        nodes whose version differs from `state`'s, ascending), reading only the nodes whose
        usage index key a commit touched between the snapshot `state` holds and this one;
        None when the log does not cover that span (then every node is read)."""
        if log is None or self._read is None or self.state is None or len(self.key_list) >= _KEY_LIMIT:
            return None
        read_lineage, read = self._read
        if read_lineage is not log[0]:
            return None
        if index >= read:  # commits in (read, index]: in this snapshot's log
            lo, hi, (lineage, floor, entries) = read, index, log
        else:  # an older snapshot (the other scheduler thread's): in (index, read], in the newest log
            held = self._log
            if held is None or held[1] < read:
                return None
            lo, hi, (lineage, floor, entries) = index, read, held[0]
        if lineage is not log[0] or floor > lo:
            return None
        pos = self._key_pos
        if pos is None:
            pos = self._key_pos = dict(zip(self._index_keys, range(len(self._index_keys))))
        moved: set = set()
        for i, touched in reversed(entries):
            if i <= lo:
                break
            if i <= hi:  # (the node's usage key, touched: the same string object, `node_usage_keys`)
                moved.update(map(pos.__getitem__, pos.keys() & touched))
        old_versions = self.state[0]
        versions = list(old_versions)
        if not moved:
            return versions, []
        moved = sorted(moved)
        keys = self._index_keys
        for j, v in zip(moved, bulk([keys[j] for j in moved])):
            versions[j] = v
        return versions, [j for j in moved if versions[j] != old_versions[j]]

    def _update(self, snapshot, versions: list[int], changed: list[int] | None = None) -> tuple[list[int], list]:
        """`changed`: the nodes whose version differs from `state`'s, when known (`_moved`)."""
        state = self.state
        before = self._before
        if state is not None and len(self.key_list) < _KEY_LIMIT:
            old_versions, old_keys, old_bases = state
            if changed is None:
                changed = list(compress(range(len(versions)), map(ne, versions, old_versions)))
            if not changed:
                return old_keys, old_bases
            keys, bases = list(old_keys), list(old_bases)
            if before is None:
                before = self._before = ([-1] * len(versions), [0] * len(versions), [None] * len(versions))
        else:
            if state is not None:  # the key ints start again: the kept versions name old ones
                self.keys_of, self.key_list = {}, []
                before = self._before = None
            old_versions = old_keys = old_bases = None
            changed = range(len(versions))
            keys, bases = [0] * len(versions), [None] * len(versions)
        nodes, keys_of, key_list = self.nodes, self.keys_of, self.key_list
        fixed_of, statics = self._fixed, self._statics
        index = getattr(snapshot, "index", None)
        # a snapshot older than one read before (another scheduler thread's): the usage cache
        # may hold a newer version of its nodes (carried over by later commits), which a node
        # counted here must not replace
        lagging = index is not None and index < self._newest
        if index is not None and not lagging:
            self._newest = index
        b_versions, b_keys, b_bases = before if before is not None else (None, None, None)
        for j in changed:
            version = versions[j]
            if b_versions is not None:
                if b_versions[j] == version:  # back to the version before: swap the two
                    keys[j], bases[j] = b_keys[j], b_bases[j]
                    b_versions[j], b_keys[j], b_bases[j] = old_versions[j], old_keys[j], old_bases[j]
                    continue
                b_versions[j], b_keys[j], b_bases[j] = old_versions[j], old_keys[j], old_bases[j]
            if version is None:
                version = 0
            node = nodes[j]
            base = cached_base(node, version)
            if base is None:
                if lagging:
                    base = NodeBase(node, snapshot.allocs_by_node(node.id), _UNCACHED)
                    base.version = (node, version)
                else:
                    base = node_base(node, snapshot.allocs_by_node(node.id), version)
            # what a node object offers is fixed: (class, capacity, port range) named by an int
            # once per node, so a changed node's key is a short tuple of that and its free room
            fixed = fixed_of[j]
            if fixed is None:
                fixed = (node.computed_class, node.node_class, base.cap_cpu, base.cap_mem, base.min_port,
                         base.max_port)
                fixed = fixed_of[j] = (statics.setdefault(fixed, len(statics)), fixed)
            short = (fixed[0], base.free_cpu, base.free_mem, base.free_disk, len(base.ports))
            k = keys_of.get(short)
            if k is None:
                computed, node_class, cap_cpu, cap_mem, lo, hi = fixed[1]
                k = keys_of[short] = len(key_list)
                key_list.append(((computed, node_class, cap_cpu, cap_mem, short[1], short[2], short[3], short[4], lo,
                                  hi), j))
            keys[j] = k
            bases[j] = base
        self.state = (versions, keys, bases)
        return keys, bases


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
    shuffle(perm, rng)  # the same draws and swaps as shuffling the nodes themselves
    return replace(ready, nodes=list(map(ready.nodes.__getitem__, perm))), perm


def shuffle(x: list, rng) -> None:
    """`rng.shuffle(x)`: the same draws and swaps, with `Random._randbelow` (getrandbits
    rejection sampling, CPython 3.11's) inlined: one eval shuffles all its candidates. The
    draws below i + 1 take (i + 1).bit_length() bits: the steps are walked in runs of one
    bit length (no bit_length call per step; ~20% quicker). Drawing the generator's words
    in blocks instead (one getrandbits call, then the state set back to the words used)
    was slower: the block's ints cost more than the calls."""
    if type(rng) is not Random or Random._randbelow is not Random._randbelow_with_getrandbits:
        rng.shuffle(x)
        return
    getrandbits = rng.getrandbits
    n = len(x)
    for k in range(n.bit_length(), 1, -1):
        top = (1 << k) - 2  # the steps i with (i + 1).bit_length() == k: 2**(k-1) - 1 .. 2**k - 2
        for i in range(n - 1 if top >= n else top, (1 << (k - 1)) - 2, -1):
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
            x[i], x[j] = x[j], x[i]
