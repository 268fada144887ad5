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

from collections.abc import Iterable, Iterator
from typing import Any

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
_fresh_gen = 0
_fresh: set[int] = set()


def _claim(node: Any, gen: int) -> Any:
    """Record `node` (just created) as owned by `gen`."""
    global _fresh_gen
    if gen != _fresh_gen:
        _fresh.clear()
        _fresh_gen = gen
    _fresh.add(id(node))
    return node


def _owns(node: Any, gen: int) -> bool:
    return gen == _fresh_gen and id(node) in _fresh


def _new_leaf(gen: int, items: Any = ()) -> _Leaf:
    return _claim(dict(items), gen)


def _new_branch(gen: int, children: Any) -> _Branch:
    return _claim(list(children), gen)


def _split(leaf: _Leaf, shift: int, gen: int) -> _Branch:
    children: list[_Leaf | None] = [None] * _FANOUT
    for key, value in leaf.items():
        i = (hash(key) >> shift) & _MASK
        child = children[i]
        if child is None:
            child = children[i] = _new_leaf(gen)
        child[key] = value
    return _new_branch(gen, children)


class CowMap:
    """A map that is cheap to share: see the module docstring."""

    __slots__ = ("_gen", "_root", "_size")

    def __init__(self, gen: int = 0, root: Any = None, size: int = 0) -> None:
        self._gen = gen
        self._root = root if root is not None else _new_leaf(gen)
        self._size = size

    # -- reads ---------------------------------------------------------
    def get(self, key: Any, default: Any = None) -> Any:
        node = self._root
        if type(node) is _Leaf:
            return node.get(key, default)
        h = hash(key)
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
        return CowMap(gen, self._root, self._size)

    def _writable_path(self, key: Any, gen: int) -> tuple[_Leaf, _Branch | None, int, int]:
        """The leaf holding `key` (created/copied as needed), its parent and slot, its depth."""
        root = self._root
        if not _owns(root, gen):
            root = self._root = (_new_leaf if type(root) is _Leaf else _new_branch)(gen, root)
        node, parent, slot, shift = root, None, 0, 0
        h = hash(key)
        while type(node) is _Branch:
            parent, slot = node, (h >> shift) & _MASK
            child = node[slot]
            if child is None:
                child = node[slot] = _new_leaf(gen)
            elif not _owns(child, gen):
                child = node[slot] = (_new_leaf if type(child) is _Leaf else _new_branch)(gen, child)
            node = child
            shift += _BITS
        return node, parent, slot, shift

    def assoc(self, key: Any, value: Any, gen: int) -> "CowMap":
        """This map with `key` set; writes in place when the map belongs to `gen`."""
        m = self if self._gen == gen else self._owned(gen)
        root = m._root
        if type(root) is _Leaf:  # small maps: no trie walk
            if not _owns(root, gen):
                root = m._root = _new_leaf(gen, root)
            if key not in root:
                m._size += 1
                root[key] = value
                if len(root) > _LEAF_MAX:
                    m._root = _split(root, 0, gen)
            else:
                root[key] = value
            return m
        leaf, parent, slot, shift = m._writable_path(key, gen)
        if key in leaf:
            leaf[key] = value
            return m
        m._size += 1
        leaf[key] = value
        if len(leaf) > _LEAF_MAX and shift < _MAX_SHIFT:
            m._split_leaf(leaf, parent, slot, shift, gen)
        return m

    def _split_leaf(self, leaf: _Leaf, parent: _Branch | None, slot: int, shift: int, gen: int) -> None:
        branch = _split(leaf, shift, gen)
        if parent is None:
            self._root = branch
        else:
            parent[slot] = branch

    def update(self, items: Iterable[tuple[Any, Any]], gen: int) -> "CowMap":
        """This map with every `(key, value)` of `items` set, in order: what `assoc` one
        at a time gives, in one loop (a plan's new allocs go into an index this way)."""
        m = self if self._gen == gen else self._owned(gen)
        size = m._size
        for key, value in items:
            node, parent, slot, shift = m._writable_path(key, gen)
            if key in node:
                node[key] = value
                continue
            node[key] = value
            size += 1
            if len(node) > _LEAF_MAX and shift < _MAX_SHIFT:
                m._split_leaf(node, parent, slot, shift, gen)
        m._size = size
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


_MISSING = object()
EMPTY = CowMap()


def bucket_add(index: CowMap, key: Any, member: Any, gen: int, value: Any = True) -> CowMap:
    """Add `member` to the set stored under `key` in a secondary index (or set the value
    a bucket keeps for it: `allocs_by_node` keeps each alloc's AllocModifyIndex)."""
    bucket = index.get(key)
    if bucket is None:
        bucket = EMPTY
    new_bucket = bucket.assoc(member, value, gen)
    return index if new_bucket is bucket else index.assoc(key, new_bucket, gen)


def bucket_add_many(index: CowMap, key: Any, items: Iterable[tuple[Any, Any]], gen: int) -> CowMap:
    """`bucket_add` of each `(member, value)` of `items` under one `key`."""
    bucket = index.get(key)
    if bucket is None:
        bucket = EMPTY
    new_bucket = bucket.update(items, gen)
    return index if new_bucket is bucket else index.assoc(key, new_bucket, gen)


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
def tuple_bucket_add(index: CowMap, key: Any, members: Iterable[Any], gen: int) -> CowMap:
    """Append `members` (not yet in it) to the tuple under `key`."""
    bucket = index.get(key)
    return index.assoc(key, (*bucket, *members) if bucket else tuple(members), gen)


def tuple_bucket_remove(index: CowMap, key: Any, member: Any, gen: int) -> CowMap:
    """Remove `member` from the tuple under `key`; drop the key when the tuple is empty."""
    bucket = index.get(key)
    if not bucket or member not in bucket:
        return index
    if len(bucket) == 1:
        return index.dissoc(key, gen)
    return index.assoc(key, tuple(m for m in bucket if m != member), gen)
