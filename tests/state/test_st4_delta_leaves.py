"""`CowMap.put` overlays a leaf of an older generation (`cow._Delta`) instead of copying it:
the entries, the size and every older version must read exactly as with `assoc`."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from yurt.state import cow
from yurt.state.cow import EMPTY, CowMap, new_generation


def _nodes(root):
    stack = [root]
    while stack:
        n = stack.pop()
        yield n
        if type(n) is list:
            stack.extend(c for c in n if c is not None)


_BIG: dict[int, CowMap] = {}
_BIG_MODEL: dict[int, dict] = {}


def _big(n: int) -> CowMap:
    """A map of `n` keys written by one older generation (shared between tests: never
    written again)."""
    if n not in _BIG:
        _BIG[n] = EMPTY.update(((f"k{i}", i) for i in range(n)), new_generation())
    return _BIG[n]


def _read_all(m: CowMap, keys) -> dict:
    return {k: m.get(k) for k in keys if k in m}


def test_put_overlays_an_older_leaf_and_leaves_the_old_version_alone():
    m = _big(30_000)  # leaves of ~29 entries (32 x 32 branches)
    frozen, frozen_items = m, m.to_dict()
    gen = new_generation()
    m = m.put("k5", -5, gen).put("new", 1, gen)
    deltas = [n for n in _nodes(m._root) if type(n) is cow._Delta]
    assert deltas, "a put into an older leaf overlays it"
    assert any(d.base is leaf for d in deltas for leaf in _nodes(frozen._root))  # the old leaf itself, shared
    assert frozen.to_dict() == frozen_items and len(frozen) == 30_000 and frozen.get("k5") == 5 and "new" not in frozen
    assert m.get("k5") == -5 and m.get("new") == 1 and m.get("k6") == 6 and len(m) == 30_001
    assert m.to_dict() == {**frozen_items, "k5": -5, "new": 1}
    # a later generation's put copies the delta's changes, never writes the older delta
    older = m
    m = m.put("k5", -55, new_generation())
    assert older.get("k5") == -5 and m.get("k5") == -55 and frozen.get("k5") == 5


def test_a_delta_compacts_after_its_changes_and_splits_when_full():
    m = _big(63_000)  # leaves of ~62 entries: a few more keys split them
    frozen, frozen_items = m, m.to_dict()
    model = dict(frozen_items)
    snaps = []
    for r in range(60):
        gen = new_generation()
        for j in range(40):
            key = f"k{(r * 131 + j * 17) % 63_000}" if j % 2 else f"n{r}-{j}"
            m = m.put(key, (r, j), gen)
            model[key] = (r, j)
        snaps.append((m, dict(model)))
    assert m.to_dict() == model and len(m) == len(model)
    assert _read_all(m, model) == model
    for snap, snap_model in snaps[::6]:
        assert snap.to_dict() == snap_model and len(snap) == len(snap_model)
    assert frozen.to_dict() == frozen_items
    for n in _nodes(m._root):
        if type(n) is cow._Delta:
            assert len(n.changes) <= cow._DELTA_MAX + 1 and len(n.base) + n.extra <= cow._LEAF_MAX


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("pad u"), st.integers(0, 1500)), max_size=700),
       st.integers(0, 2**32))
def test_put_mixed_with_every_other_write_matches_a_dict_model(ops, seed):
    """put / assoc / dissoc / update over deltas, with snapshots taken between generations."""
    rng = random.Random(seed)
    m = _big(30_000)
    model = _BIG_MODEL.setdefault(30_000, m.to_dict())
    model = dict(model)
    saved: list[tuple[CowMap, dict]] = [(m, dict(model))]
    gen = new_generation()
    for op, n in ops:
        key = f"k{n}"
        if rng.random() < 0.15:
            saved.append((m, dict(model)))
            gen = new_generation()
        if op == "p":
            m = m.put(key, -n, gen)
            model[key] = -n
        elif op == "a":
            m = m.assoc(key, n * 3, gen)
            model[key] = n * 3
        elif op == "d":
            m = m.dissoc(key, gen)
            model.pop(key, None)
        elif op == "u":
            items = [(f"k{(n + i * 7) % 1500}", i) for i in range(10)]
            m = m.update(items, gen)
            model.update(items)
        else:
            assert (key in m) == (key in model)
    assert m.to_dict() == model and len(m) == len(model) and _read_all(m, model) == model
    assert set(m.keys()) == model.keys() and len(list(m.values())) == len(model)
    touched = {f"k{n}" for n in range(1500)}
    for snap, snap_model in saved:  # (the keys the ops can reach, and the size)
        assert len(snap) == len(snap_model)
        assert {k: snap.get(k) for k in touched if k in snap} == {k: snap_model[k] for k in touched if k in snap_model}
    assert saved[0][0].to_dict() == saved[0][1]


def test_the_allocs_table_reads_the_same_through_deltas():
    """A store's allocs written by plans then client reports: every older snapshot still
    reads what it read when taken (the allocs table is the map written with `put`)."""
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from state_fixtures import alloc, evaluation, job, node
    from yurt.state import StateStore
    from yurt.state.commands import AllocClientUpdate, AllocUpdate, JobRegister, NodeRegister, PlanApply
    from yurt.structs import TaskState

    store = StateStore.open(None)
    nodes = [node() for _ in range(7)]
    for n in nodes:
        store.apply(NodeRegister(node=n))
    j = job()
    store.apply(JobRegister(job=j))
    j = store.snapshot().job_by_id(j.namespace, j.id)
    snaps = []
    placed_all = []
    for r in range(12):
        ev = evaluation(j, status="complete")
        placed = [alloc(j, nodes[i % 7].id, ev.id, idx=r * 100 + i) for i in range(90)]
        by_node: dict = {}
        for a in placed:
            by_node.setdefault(a.node_id, []).append(a)
        store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation=by_node, evals=[ev], updated_at=1))
        placed_all += placed
        snap = store.snapshot()
        snaps.append((snap, {a.id: snap.alloc_by_id(a.id).client_status for a in placed_all}))
        running = {"t": TaskState(state="running")}
        for start in range(0, 90, 25):
            store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running", task_states=running)
                                                  for a in placed[start:start + 25]], updated_at=2))
        snap = store.snapshot()
        snaps.append((snap, {a.id: snap.alloc_by_id(a.id).client_status for a in placed_all}))
    final = store.snapshot()
    assert {a.client_status for a in final.allocs()} == {"running"} and len(final.allocs()) == 12 * 90
    assert any(type(n) is cow._Delta for n in _nodes(final._t.allocs._root))
    for snap, statuses in snaps:
        assert {a.id: a.client_status for a in snap.allocs()} == statuses
        assert {i: snap.alloc_by_id(i).client_status for i in statuses} == statuses
        assert len(snap._t.allocs) == len(statuses)
