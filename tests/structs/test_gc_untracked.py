"""Objects the cyclic GC does not track (`gc=False` structs, dicts holding only untracked
objects) must never be part of a reference cycle: such a cycle is never collected, it leaks.

- by type: every `gc=False` struct's fields can hold only atomic values, other `gc=False`
  structs and builtin containers of those, and the graph of struct types is acyclic (no
  struct can hold, directly or through others, a struct of its own type);
- by running: a long series of plan / client update / garbage collection writes through the
  state store keeps its memory flat and leaves the collector nothing to find.
"""

import gc
import sys

import msgspec
import pytest

from yurt.state import StateStore
from yurt.state.commands import AllocClientUpdate, AllocUpdate, EvalDelete, JobRegister, NodeRegister, PlanApply
from yurt.state.cow import EMPTY, IdGroup, new_generation, tuple_bucket_add, tuple_bucket_remove
from yurt.structs import AllocMetric, Allocation, NodeScoreMeta, TaskEvent, TaskState, evolve
from yurt.structs.base import NomadStruct

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests/state")
from state_fixtures import alloc, evaluation, job, node, uid  # noqa: E402

_ATOMIC = (msgspec.inspect.StrType, msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.BoolType,
           msgspec.inspect.NoneType, msgspec.inspect.BytesType, msgspec.inspect.LiteralType, msgspec.inspect.EnumType,
           msgspec.inspect.DateTimeType, msgspec.inspect.DecimalType, msgspec.inspect.UUIDType)
# Any: decoded JSON values (dicts, lists, strings, numbers), trees by construction
_CONTAINERS = (msgspec.inspect.ListType, msgspec.inspect.VarTupleType, msgspec.inspect.SetType,
               msgspec.inspect.FrozenSetType)


def _all_subclasses(cls: type) -> list[type]:
    out, stack = [], [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


def _untracked_structs() -> list[type]:
    import yurt.structs  # noqa: F401  (every domain module imported)

    found = [c for c in _all_subclasses(msgspec.Struct) if c.__struct_config__.gc is False]
    return sorted({c for c in found if c.__module__.startswith("yurt.")}, key=lambda c: c.__qualname__)


def _struct_refs(t: msgspec.inspect.Type, where: str, problems: list[str]) -> set[type]:
    """The struct classes a value of type `t` may hold; what it may hold that could refer
    back to its holder goes into `problems`."""
    if isinstance(t, _ATOMIC) or isinstance(t, msgspec.inspect.AnyType):
        return set()
    if isinstance(t, msgspec.inspect.StructType):
        if t.cls.__struct_config__.gc is not False:
            problems.append(f"{where}: {t.cls.__qualname__} is tracked by the GC")
        return {t.cls}
    if isinstance(t, _CONTAINERS):
        return _struct_refs(t.item_type, where, problems)
    if isinstance(t, msgspec.inspect.DictType):
        return _struct_refs(t.key_type, where, problems) | _struct_refs(t.value_type, where, problems)
    if isinstance(t, msgspec.inspect.TupleType):
        return set().union(*(_struct_refs(x, where, problems) for x in t.item_types))
    if isinstance(t, msgspec.inspect.UnionType):
        return set().union(*(_struct_refs(x, where, problems) for x in t.types))
    problems.append(f"{where}: {t!r} may hold an object that refers back")
    return set()


def test_every_untracked_struct_holds_only_trees_of_untracked_values():
    structs = _untracked_structs()
    assert NomadStruct in structs and IdGroup in structs and Allocation in structs
    problems: list[str] = []
    edges: dict[type, set[type]] = {}
    for cls in structs:
        info = msgspec.inspect.type_info(cls)
        edges[cls] = set()
        for f in info.fields:
            edges[cls] |= _struct_refs(f.type, f"{cls.__qualname__}.{f.name}", problems)
    assert problems == []
    # no struct type reachable from itself: an instance can never hold its own holder
    state: dict[type, int] = {}

    def visit(cls: type, path: tuple[type, ...]) -> None:
        if state.get(cls) == 2:
            return
        assert state.get(cls) != 1, " -> ".join(c.__qualname__ for c in (*path, cls))
        state[cls] = 1
        for nxt in edges.get(cls, ()):
            visit(nxt, (*path, cls))
        state[cls] = 2

    for cls in structs:
        visit(cls, ())


def test_the_check_finds_a_field_that_can_refer_back():
    class Holder(msgspec.Struct):  # tracked
        x: int = 0

    class Bad(msgspec.Struct, gc=False):
        other: Holder | None = None
        anything: object = None

    problems: list[str] = []
    for f in msgspec.inspect.type_info(Bad).fields:
        _struct_refs(f.type, f.name, problems)
    assert any("Holder is tracked" in p for p in problems)


def test_prefix_groups_keep_the_trie_leaves_untracked():
    index, gen = EMPTY, new_generation()
    ids = [f"{i:04x}{k}-0000" for i in range(3000) for k in range(2)]
    for start in range(0, len(ids), 500):
        gen = new_generation()
        for i in ids[start:start + 500]:
            index = tuple_bucket_add(index, i[:4], (i,), gen)
    gen = new_generation()
    index = tuple_bucket_remove(index, ids[0][:4], ids[0], gen)
    assert index.get(ids[0][:4]).ids == (ids[1],) and list(index.get(ids[2][:4])) == ids[2:4]
    assert ids[3] in index.get(ids[3][:4]) and len(index.get(ids[3][:4])) == 2
    leaves = [n for n in _nodes(index._root) if type(n) is dict]
    assert len(leaves) > 32 and not any(gc.is_tracked(leaf) for leaf in leaves)
    assert not gc.is_tracked(index.get(ids[2][:4]))


def test_maps_stay_identity_compared_and_untracked():
    a, b = EMPTY.assoc("k", 1, 1), EMPTY.assoc("k", 1, 2)
    assert a == a and a != b and len({a, b}) == 2  # as the plain class they were
    assert not gc.is_tracked(a) and not gc.is_tracked({"bucket": a})
    assert repr(EMPTY.update(((str(i), i) for i in range(500)), 3)) == "CowMap(size=500, gen=3)"


def _nodes(root):
    stack = [root]
    while stack:
        n = stack.pop()
        yield n
        if type(n) is list:
            stack.extend(c for c in n if c is not None)


def _round(store: StateStore, j, nodes: list, n: int) -> None:
    """A plan places `n` allocs (with their metrics), the clients report them running,
    then they are stopped and garbage collected with their eval."""
    ev = evaluation(j, status="complete")
    metric = AllocMetric(score_meta_data=[NodeScoreMeta(node_id=x.id, scores={"binpack": 0.5}) for x in nodes[:5]])
    placed = [alloc(j, nodes[i % len(nodes)].id, ev.id, idx=i, metrics=metric) for i in range(n)]
    by_node: dict[str, list] = {}
    for a in placed:
        by_node.setdefault(a.node_id, []).append(a)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation=by_node, evals=[ev], updated_at=1))
    running = {"t": TaskState(state="running", events=[TaskEvent(type="Started", time=1)])}
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running", task_states=running)
                                          for a in placed], updated_at=2))
    snap = store.snapshot()
    stopped: dict[str, list] = {}
    for a in placed:
        stopped.setdefault(a.node_id, []).append(evolve(snap.alloc_by_id(a.id), desired_status="stop", client_status="complete"))
    store.apply(PlanApply(eval_id=ev.id, job=j, node_update=stopped, updated_at=3))
    store.apply(EvalDelete(eval_ids=[ev.id], alloc_ids=[a.id for a in placed]))


@pytest.mark.parametrize("rounds", [30])
def test_a_long_run_of_plan_and_alloc_writes_makes_no_garbage_cycles(rounds):
    store = StateStore.open(None)
    try:
        nodes = [node() for _ in range(20)]
        j = job(uid("job"), count=200)
        store.apply_batch([*(NodeRegister(node=x) for x in nodes), JobRegister(job=j)])
        j = store.snapshot().job_by_id(j.namespace, j.id)
        for _ in range(3):  # warm: caches, interned strings, the log's first pages
            _round(store, j, nodes, 200)
        gc.collect()
        before = sys.getallocatedblocks()
        was = gc.isenabled()
        gc.disable()
        try:
            for _ in range(rounds):
                _round(store, j, nodes, 200)
            found = gc.collect()
        finally:
            if was:
                gc.enable()
        grown = sys.getallocatedblocks() - before
        assert found < 50, found  # a cycle per round or per alloc would be >= 30 / 6,000
        assert gc.garbage == []
        assert store.snapshot().allocs_by_node(nodes[0].id) == []
        # 30 rounds of 200 allocs (~40 blocks each when leaked): a leak per alloc is >= 240,000
        assert grown < 20_000, grown
    finally:
        store.close()

