"""A copy-on-write map: O(1) snapshots, O(log n) copying per write.

`CowMap` is a small hash trie (a leaf dict of up to `_LEAF_MAX` entries, split into
32-way branches by hash bits as it grows). Every node belongs to the *generation* that
created it. A write in generation `gen` changes nodes of that generation in place and
copies the others along the path from the root (a root branch of 32 pointers, a few
more branches, and one leaf dict of at most `_LEAF_MAX` entries). Readers that hold a
map of an older generation therefore never see a later write, and taking a snapshot
costs nothing: keep the reference.

Writers use each generation number once (one per state transaction), so a map that a
snapshot holds is never changed again. `assoc`/`dissoc` return the map to keep (the
same object when it was already owned by `gen`).
"""

import itertools
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import msgspec

# 32-way: a leaf of 65 entries splits into leaves of ~2 entries, where 64-way gave ~1, and
# Python's smallest dict is 184 bytes. Trie bytes per entry (leaves + branches, random
# keys) at 200 / 1,000 / 1,000,000 entries: 63 / 32 / 54 with 64-way, 40 / 27 / 28 with
# 32-way. W1 full (a node version map of ~200 allocs, a job's and an eval's index of 1,000,
# the alloc table of 1M): ~180 -> ~120 bytes per alloc; the write CPU is the same.
_BITS = 5
_FANOUT = 1 << _BITS
_MASK = _FANOUT - 1
_LEAF_MAX = 64
_MAX_SHIFT = 60  # below this depth leaves split; past it they grow (hash collisions)


# Trie nodes are plain dicts (leaves) and lists (branches). A leaf holding only strings,
# ints and `gc=False` structs is then not tracked by the cyclic GC (a dict subclass always
# is): young-generation collections skip the state's new leaves instead of walking every
# entry of each (~5% of a W1 server's CPU). Which generation owns a node is kept apart, as
# the ids of the nodes created under the current generation (one writer at a time per
# store; a node found there is alive, so the id is its own). Another store's generation
# resets it: that costs copies, never a write into a node some map still shares.
_Leaf = dict
_Branch = list
_generations = itertools.count(1)


def new_generation() -> int:
    """A generation number no writer in this process has used: every store and restore
    takes its numbers here, so two stores (a test's, a restore's) never share one, and
    the ids recorded for one generation are never taken for another's nodes."""
    return next(_generations)


_fresh_gen = 0
_fresh: set[int] = set()


def _fresh_set(gen: int) -> set[int]:
    """The ids of the nodes created under `gen` (cleared when another generation writes)."""
    global _fresh_gen
    if gen != _fresh_gen:
        _fresh.clear()
        _fresh_gen = gen
    return _fresh


# The write paths below test and record ownership inline (no call per trie level) and copy
# with `.copy()`.
def _build(entries: dict, shift: int, fresh: set[int], slot_hash: Any = hash) -> Any:
    """A new subtree (owned: ids in `fresh`) holding `entries` (the dict becomes its leaf
    when small enough), split while a leaf is over `_LEAF_MAX`: one pass per level where
    inserting them one at a time walked from the root for each. `slot_hash`: the map's
    (`CowMap._slot_hash`)."""
    if len(entries) <= _LEAF_MAX or shift >= _MAX_SHIFT:
        fresh.add(id(entries))
        return entries
    groups: list[dict | None] = [None] * _FANOUT
    for key, value in entries.items():
        i = (slot_hash(key) >> shift) & _MASK
        group = groups[i]
        if group is None:
            groups[i] = {key: value}
        else:
            group[key] = value
    shift += _BITS
    branch = [None if g is None else _build(g, shift, fresh, slot_hash) for g in groups]
    fresh.add(id(branch))
    return branch


def _merge(node: Any, entries: dict, shift: int, fresh: set[int], combine: Any = None,
           slot_hash: Any = hash) -> tuple[Any, int]:
    """`node` (a subtree, or None) with `entries` set, copying what `fresh` does not own;
    returns the node to keep and how many keys were new. `combine(current value or None,
    entry)`, if given, makes the value set from each entry."""
    if node is None:
        if combine is not None:
            entries = {key: combine(None, value) for key, value in entries.items()}
        return _build(entries, shift, fresh, slot_hash), len(entries)
    if type(node) is _Leaf:
        if combine is not None:
            get = node.get
            entries = {key: combine(get(key), value) for key, value in entries.items()}
        before = len(node)
        if id(node) not in fresh:
            node = {**node, **entries}
        else:
            node.update(entries)
        added = len(node) - before
        if len(node) > _LEAF_MAX and shift < _MAX_SHIFT:
            return _build(node, shift, fresh, slot_hash), added
        fresh.add(id(node))
        return node, added
    if id(node) not in fresh:
        node = node.copy()
        fresh.add(id(node))
    groups: dict[int, dict] = {}
    for key, value in entries.items():
        i = (slot_hash(key) >> shift) & _MASK
        group = groups.get(i)
        if group is None:
            groups[i] = {key: value}
        else:
            group[key] = value
    added = 0
    shift += _BITS
    for i, group in groups.items():
        node[i], n = _merge(node[i], group, shift, fresh, combine, slot_hash)
        added += n
    return node, added


class CowMap(msgspec.Struct, gc=False, eq=False, repr_omit_defaults=True):
    """A map that is cheap to share: see the module docstring.

    `CowMap(gen=0, root=None, size=0)` positionally (`root`: an empty leaf when omitted).
    A `gc=False` struct: not tracked by the cyclic GC, and so neither is a leaf holding
    maps (the secondary indexes' buckets): young collections walked every new map and every
    copied leaf of buckets. Safe as no map can hold itself: values are structs, IDs, ints,
    other maps (buckets) and tuples of those, never a `Tables` or anything holding a map
    that holds them."""

    _gen: int = 0
    _root: Any = msgspec.field(default_factory=dict)
    _size: int = 0
    # a node's version map (`allocs_by_node`) only: its write log (`tables.NodeAllocLog`) and
    # how many of the log's entries describe this map; a map derived from it by a write that
    # does not log (a new generation's copy) starts without one (then the reader scans)
    _log: Any = None
    _log_n: int = 0
    # the hash whose bits pick a key's slot at each level (not a field; `HintedCowMap`'s
    # differs): one attribute lookup and call per walk, ~50 ns of a walk's microseconds
    _slot_hash = staticmethod(hash)

    def __repr__(self) -> str:  # not the struct's field dump: a table's trie holds millions of entries
        return f"CowMap(size={self._size}, gen={self._gen})"

    # -- reads ---------------------------------------------------------
    def get(self, key: Any, default: Any = None) -> Any:
        node = self._root
        if type(node) is _Leaf:
            return node.get(key, default)
        h = self._slot_hash(key)
        shift = 0
        while type(node) is _Branch:
            node = node[(h >> shift) & _MASK]
            if node is None:
                return default
            shift += _BITS
        return node.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def _leaves(self) -> Iterator[_Leaf]:
        stack = [self._root]
        while stack:
            node = stack.pop()
            if type(node) is _Leaf:
                yield node
            else:
                stack.extend(c for c in node if c is not None)

    def keys(self) -> Iterator[Any]:
        for leaf in self._leaves():
            yield from leaf.keys()

    __iter__ = keys

    def values(self) -> Iterator[Any]:
        for leaf in self._leaves():
            yield from leaf.values()

    def items(self) -> Iterator[tuple[Any, Any]]:
        for leaf in self._leaves():
            yield from leaf.items()

    def to_dict(self) -> dict:
        """A new plain dict of the entries (in no particular order)."""
        out: dict = {}
        for leaf in self._leaves():
            out.update(leaf)
        return out

    # -- writes --------------------------------------------------------
    def _owned(self, gen: int) -> "CowMap":
        if self._gen == gen:
            return self
        if gen < self._gen:
            raise ValueError(f"generation {gen} is older than the map's {self._gen}")
        return type(self)(gen, self._root, self._size)

    def _writable_path(self, key: Any, gen: int) -> tuple[_Leaf, _Branch | None, int, int]:
        """The leaf holding `key` (created/copied as needed), its parent and slot, its depth."""
        fresh = _fresh if gen == _fresh_gen else _fresh_set(gen)
        node = self._root
        if id(node) not in fresh:
            node = self._root = node.copy()
            fresh.add(id(node))
        if type(node) is _Leaf:
            return node, None, 0, 0
        h = self._slot_hash(key)
        shift = 0
        while True:
            slot = (h >> shift) & _MASK
            child = node[slot]
            if child is None:
                child = node[slot] = {}
                fresh.add(id(child))
            elif id(child) not in fresh:
                child = node[slot] = child.copy()
                fresh.add(id(child))
            shift += _BITS
            if type(child) is _Leaf:
                return child, node, slot, shift
            node = child

    def assoc(self, key: Any, value: Any, gen: int) -> "CowMap":
        """This map with `key` set; writes in place when the map belongs to `gen`."""
        m = self if self._gen == gen else self._owned(gen)
        leaf, parent, slot, shift = m._writable_path(key, gen)
        if key in leaf:
            leaf[key] = value
            return m
        m._size += 1
        leaf[key] = value
        if len(leaf) > _LEAF_MAX and shift < _MAX_SHIFT:
            m._split_leaf(leaf, parent, slot, shift, gen)
        return m

    def set_walked(self, leaf: _Leaf, parent: _Branch | None, slot: int, shift: int, key: Any, value: Any,
                   gen: int) -> None:
        """Set `key` in `leaf`, which `_writable_path(key, gen)` of this map (owned by `gen`)
        returned with `parent`, `slot` and `shift`: what `assoc` does after its walk, for a
        caller that read the leaf first (a get and an assoc walked the trie twice)."""
        if key not in leaf:
            self._size += 1
            leaf[key] = value
            if len(leaf) > _LEAF_MAX and shift < _MAX_SHIFT:
                self._split_leaf(leaf, parent, slot, shift, gen)
        else:
            leaf[key] = value

    def _split_leaf(self, leaf: _Leaf, parent: _Branch | None, slot: int, shift: int, gen: int) -> None:
        branch = _build(leaf, shift, _fresh_set(gen), self._slot_hash)
        if parent is None:
            self._root = branch
        else:
            parent[slot] = branch

    def update(self, items: Iterable[tuple[Any, Any]], gen: int) -> "CowMap":
        """This map with every `(key, value)` of `items` set, in order: what `assoc` one
        at a time gives, in one pass per trie level (a plan's new allocs go into an index
        this way)."""
        m = self if self._gen == gen else self._owned(gen)
        entries = dict(items)
        if len(entries) < 8:
            for key, value in entries.items():
                m = m.assoc(key, value, gen)
            return m
        m._root, added = _merge(m._root, entries, 0, _fresh_set(gen), None, m._slot_hash)
        m._size += added
        return m

    def merge_with(self, entries: dict, combine: Any, gen: int) -> "CowMap":
        """This map with each key of `entries` set to `combine(its current value or None,
        entries[key])`, in one pass per trie level (no lookup walk per key first)."""
        m = self if self._gen == gen else self._owned(gen)
        m._root, added = _merge(m._root, entries, 0, _fresh_set(gen), combine, m._slot_hash)
        m._size += added
        return m

    def dissoc(self, key: Any, gen: int) -> "CowMap":
        """This map without `key` (unchanged when the key is absent)."""
        if key not in self:
            return self
        m = self._owned(gen)
        leaf, _parent, _slot, _shift = m._writable_path(key, gen)
        del leaf[key]
        m._size -= 1
        return m


# -- the allocs table: a trie whose top levels follow the IDs' locality hints ---------------
# An alloc ID's last 4 hex characters carry a locality hint (`yurt.structs.ids`): the IDs a
# plan builder hands out in a row share it, ~32 IDs a hint. `hinted_hash` takes a key's low
# `_HINT_BITS` bits (the slots of the top 3 trie levels) from it and the others from
# `hash(key)`: the allocs placed together then share one leaf at a million allocs (~32,768
# leaves of ~30 at depth 3), where random IDs put each in a leaf of its own. A write
# transaction copies (and the snapshot that held the old version frees) one path per leaf
# it writes: a plan of 1,000 new allocs copied ~1,000 leaves and ~1,000 branches, a client
# update batch (the allocs of the last plan or two) one leaf per update. A key that is not
# 36 characters or whose tail is not hex (tests' "a1") takes all its bits from `hash(key)`;
# any UUID's tail is random, so older IDs spread as before.
_HINT_BITS = 3 * _BITS
_HINT_MASK = (1 << _HINT_BITS) - 1
_HINT_HIGH = ~_HINT_MASK


def hinted_hash(key: Any) -> int:
    """The slot hash of `HintedCowMap`."""
    h = hash(key)
    if len(key) == 36:
        try:
            return h & _HINT_HIGH | int(key[32:], 16) & _HINT_MASK
        except ValueError:
            pass
    return h


class HintedCowMap(CowMap, gc=False, eq=False, repr_omit_defaults=True):
    """A `CowMap` whose slots come from `hinted_hash` (see above): the allocs table."""

    _slot_hash = staticmethod(hinted_hash)

    def __repr__(self) -> str:
        return f"HintedCowMap(size={self._size}, gen={self._gen})"


class FlatMap(msgspec.Struct, gc=False, eq=False):
    """A map kept as one plain dict per generation: the first write of a generation copies
    the dict (C speed, ~10 ns an entry), later writes of that generation change it in place.
    For a map of a few thousand keys that most write transactions touch in hundreds of
    places: `allocs_by_node` (one key per node), where a plan's ~1,000 new allocs walked the
    trie to ~900 nodes' buckets (~2.5 us a walk, cold branches and leaves; the copy of
    5,000 pointers is ~40 us). The read and write methods are `CowMap`'s (`get`, `items`,
    `assoc`, `dissoc`...). `FlatMap(gen=0, d=None)` positionally."""

    _gen: int = 0
    _d: Any = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FlatMap(size={len(self._d)}, gen={self._gen})"

    def get(self, key: Any, default: Any = None) -> Any:
        return self._d.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __bool__(self) -> bool:
        return bool(self._d)

    def keys(self) -> Iterator[Any]:
        return iter(self._d.keys())

    __iter__ = keys

    def values(self) -> Iterator[Any]:
        return iter(self._d.values())

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._d.items())

    def to_dict(self) -> dict:
        return dict(self._d)

    def owned(self, gen: int) -> "FlatMap":
        """This map when it belongs to `gen` (a writer of `gen` may change its `_d` in
        place), else a copy that does."""
        if self._gen == gen:
            return self
        if gen < self._gen:
            raise ValueError(f"generation {gen} is older than the map's {self._gen}")
        return FlatMap(gen, dict(self._d))

    def assoc(self, key: Any, value: Any, gen: int) -> "FlatMap":
        m = self if self._gen == gen else self.owned(gen)
        m._d[key] = value
        return m

    def dissoc(self, key: Any, gen: int) -> "FlatMap":
        if key not in self._d:
            return self
        m = self.owned(gen)
        del m._d[key]
        return m


EMPTY_FLAT = FlatMap(-1)  # (no writer's generation: the first write copies it)


_MISSING = object()
EMPTY = CowMap()  # a fresh leaf (gen 0, never claimed: the first write copies it)
EMPTY_HINTED = HintedCowMap()  # the allocs table's empty map


def _set_with(index: CowMap, key: Any, make: Any, gen: int) -> CowMap:
    """`index` with `key` set to `make(current value or None)`, in one walk down the trie
    (a `get` then an `assoc` walked it twice); unchanged when `make` returns the current
    value itself (the walk has then only copied what was already this generation's)."""
    m = index if index._gen == gen else index._owned(gen)
    path = m._writable_path(key, gen)
    old = path[0].get(key)
    new = make(old)
    if new is not old:
        m.set_walked(*path, key, new, gen)
    return m


def bucket_add(index: CowMap, key: Any, member: Any, gen: int, value: Any = True) -> CowMap:
    """Add `member` to the set stored under `key` in a secondary index (or set the value
    a bucket keeps for it: `allocs_by_node` keeps each alloc's AllocModifyIndex)."""
    return _set_with(index, key, lambda bucket: (EMPTY if bucket is None else bucket).assoc(member, value, gen), gen)


def bucket_add_many(index: CowMap, key: Any, items: Iterable[tuple[Any, Any]], gen: int) -> CowMap:
    """`bucket_add` of each `(member, value)` of `items` under one `key`."""
    items = items if type(items) is list else list(items)
    if not items:
        return index
    if len(items) == 1:  # a plan's new allocs on a node: usually one
        (member, value), = items
        return _set_with(index, key, lambda bucket: (EMPTY if bucket is None else bucket).assoc(member, value, gen), gen)
    return _set_with(index, key, lambda bucket: (EMPTY if bucket is None else bucket).update(items, gen), gen)


def bucket_remove(index: CowMap, key: Any, member: Any, gen: int) -> CowMap:
    """Remove `member` from the set under `key`; drop the key when the set is empty."""
    bucket = index.get(key)
    if bucket is None or member not in bucket:
        return index
    if len(bucket) == 1:
        return index.dissoc(key, gen)
    new_bucket = bucket.dissoc(member, gen)
    return index if new_bucket is bucket else index.assoc(key, new_bucket, gen)


# `allocs_by_prefix` keeps each bucket as a tuple of IDs, not a CowMap: a plan's ~1,000
# new allocs land in up to 1,000 of the 65,536 groups, and one tuple per group per command is
# much cheaper than a trie path per ID (removal is O(bucket): ~15 IDs at a million allocs).
# The tuple is wrapped in an `IdGroup` (a `gc=False` struct): a fresh tuple is tracked by the
# cyclic GC, and a leaf dict holding one becomes tracked for good (CPython untracks dicts only
# in full collections), so every leaf a plan copied (~1,000 of ~45 entries) was walked by the
# next young collection: 37% of what those walked in a W1 server (2026-11-27). A leaf of
# `IdGroup`s holds only untracked objects and stays untracked.
# A group keeps its IDs as the chunks they came in (`grown_group` adds one; the IDs already
# there are neither copied nor touched, up to `_GROUP_CHUNKS` chunks): copying a group's ~15
# IDs (cold objects by then) to add one or two was most of a fold's CPU (`Txn._fold_alloc_tail`:
# 8.4 -> 2.6 us per ID at 700,000 allocs).
# With 3-character groups (`tables.ALLOC_PREFIX_LEN`) a fold of 16,384 IDs adds a chunk of ~4
# to each of the 4,096 groups: a group is flattened after 9 to 16 chunks (`_flatten_at`, from
# its first chunk's length), so the groups do not all copy their IDs in the same fold.
_GROUP_CHUNKS = 16


def _flatten_at(chunks: tuple) -> int:
    return _GROUP_CHUNKS - (len(chunks[0]) & 7)


class IdGroup(msgspec.Struct, gc=False, frozen=True):
    """An `allocs_by_prefix` bucket: the IDs of one group, in insertion order (`ids`), as
    the chunks they were added in. Read like a set of IDs (`keys()`, iteration, `in`,
    `len`), as the CowMap buckets of other indexes."""

    chunks: tuple[tuple[str, ...], ...]

    @property
    def ids(self) -> tuple[str, ...]:
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else tuple(chain.from_iterable(chunks))

    def keys(self) -> tuple[str, ...]:
        return self.ids

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self.chunks)

    def __contains__(self, member: object) -> bool:
        return any(member in chunk for chunk in self.chunks)

    def __len__(self) -> int:
        return sum(map(len, self.chunks))


def grown_group(group: "IdGroup | None", members: Iterable[Any]) -> "IdGroup":
    """`group` (or none) with `members` (not yet in it) appended."""
    new = tuple(members)
    if group is None:
        return IdGroup((new,))
    if not new:
        return group
    chunks = group.chunks
    if len(chunks) >= _flatten_at(chunks):
        return IdGroup(((*chain.from_iterable(chunks), *new),))
    return IdGroup((*chunks, new))


def group_without(group: IdGroup, member: Any) -> "IdGroup | None":
    """`group` without `member` (None when that empties it): only the chunk holding it is
    copied, the others are kept as they are."""
    chunks = tuple(c if member not in c else tuple(i for i in c if i != member) for c in group.chunks)
    chunks = tuple(c for c in chunks if c)
    return IdGroup(chunks) if chunks else None


# the plain dicts `owned_dict` made under `_owned_gen`, held (a few per generation: the
# tables' `indexes` and `allocs_by_prefix`), so that an id found here is that very dict's
_owned_gen = 0
_owned: dict[int, dict] = {}


def owned_dict(d: dict, gen: int) -> dict:
    """`d` itself when this function made it under `gen` (a writer may change it in place),
    else a copy that is (for a plain dict kept whole per version: `Tables.indexes`,
    `Tables.allocs_by_prefix`)."""
    global _owned_gen
    if gen != _owned_gen:
        _owned.clear()
        _owned_gen = gen
    if _owned.get(id(d)) is d:
        return d
    d = dict(d)
    _owned[id(d)] = d
    return d


def tuple_bucket_add(index: CowMap, key: Any, members: Iterable[Any], gen: int) -> CowMap:
    """Append `members` (not yet in it) to the `IdGroup` under `key`."""
    return _set_with(index, key, lambda bucket: grown_group(bucket, members), gen)


def tuple_bucket_remove(index: CowMap, key: Any, member: Any, gen: int) -> CowMap:
    """Remove `member` from the `IdGroup` under `key`; drop the key when it is empty."""
    bucket = index.get(key)
    if not bucket or member not in bucket:
        return index
    rest = group_without(bucket, member)
    return index.dissoc(key, gen) if rest is None else index.assoc(key, rest, gen)
