"""CowMap: a map with cheap snapshots (model-checked against dict)."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from yurt.state.cow import (
    EMPTY,
    CowMap,
    bucket_add,
    bucket_add_many,
    bucket_remove,
    new_generation,
    tuple_bucket_add,
    tuple_bucket_remove,
)


def test_assoc_get_dissoc_and_len():
    m = EMPTY.assoc("a", 1, gen=1).assoc("b", 2, gen=1)
    assert m.get("a") == 1 and m.get("b") == 2 and m.get("c") is None
    assert len(m) == 2 and "a" in m and "c" not in m
    m = m.dissoc("a", gen=2)
    assert "a" not in m and len(m) == 1
    assert m.dissoc("missing", gen=3) is m


def test_empty_is_never_changed():
    EMPTY.assoc("x", 1, gen=5)
    assert len(EMPTY) == 0 and "x" not in EMPTY


def test_old_generation_never_sees_later_writes_across_splits():
    m = CowMap()
    for i in range(2000):
        m = m.assoc(f"k{i}", i, gen=1)
    frozen = m
    m = m.assoc("k5", -5, gen=2)
    for i in range(2000, 6000):
        m = m.assoc(f"k{i}", i, gen=2)
    m = m.dissoc("k7", gen=3)
    assert len(frozen) == 2000
    assert frozen.get("k5") == 5 and frozen.get("k7") == 7 and "k2500" not in frozen
    assert dict(frozen.items()) == {f"k{i}": i for i in range(2000)}
    assert m.get("k5") == -5 and "k7" not in m and len(m) == 5999


def test_same_generation_writes_in_place():
    m = EMPTY.assoc("a", 1, gen=1)
    assert m.assoc("b", 2, gen=1) is m


def test_buckets_add_remove_and_drop_empty():
    index = bucket_add(EMPTY, "job", "a1", gen=1)
    index = bucket_add(index, "job", "a2", gen=1)
    before = index
    index = bucket_remove(index, "job", "a1", gen=2)
    assert set(index.get("job").keys()) == {"a2"}
    assert set(before.get("job").keys()) == {"a1", "a2"}
    index = bucket_remove(index, "job", "a2", gen=3)
    assert index.get("job") is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 400)), max_size=600), st.integers(0, 2**32))
def test_matches_dict_model_with_snapshots(ops, seed):
    rng = random.Random(seed)
    m, model = CowMap(), {}
    saved: list[tuple[CowMap, dict]] = []
    gen = new_generation()
    for is_set, key in ops:
        if rng.random() < 0.1:
            saved.append((m, dict(model)))
            gen = new_generation()
        if is_set:
            m = m.assoc(key, key * 2, gen)
            model[key] = key * 2
        else:
            m = m.dissoc(key, gen)
            model.pop(key, None)
    assert dict(m.items()) == model and len(m) == len(model)
    for snap, snap_model in saved:
        assert dict(snap.items()) == snap_model and len(snap) == len(snap_model)


def test_to_dict_has_every_entry_across_splits():
    m = EMPTY
    for i in range(500):
        m = m.assoc(f"k{i}", i, gen=1 + i // 100)
    assert m.to_dict() == {f"k{i}": i for i in range(500)}
    assert EMPTY.to_dict() == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3000), max_size=300), max_size=8))
def test_update_is_assoc_one_at_a_time(batches):
    one, many = CowMap(), CowMap()
    saved = []
    for gen, keys in enumerate(batches, start=1):
        items = [(k, (gen, k)) for k in keys]
        for key, value in items:
            one = one.assoc(key, value, gen)
        many = many.update(items, gen)
        saved.append((many, one.to_dict()))
        assert many.to_dict() == one.to_dict() and len(many) == len(one)
    for snap, model in saved:  # earlier generations are never written again
        assert snap.to_dict() == model and len(snap) == len(model)


def test_bucket_add_many_matches_bucket_add():
    one = many = bucket_add(EMPTY, "j", "a0", gen=1)
    for i in range(1, 200):
        one = bucket_add(one, "j", f"a{i}", gen=2, value=i)
    many = bucket_add_many(many, "j", [(f"a{i}", i) for i in range(1, 200)], gen=2)
    assert many.get("j").to_dict() == one.get("j").to_dict()
    assert len(many.get("j")) == 200


def test_tuple_buckets_add_remove_and_drop_empty():
    index = tuple_bucket_add(EMPTY, "ab", ["ab1"], gen=1)
    index = tuple_bucket_add(index, "ab", ["ab2", "ab3"], gen=1)
    before = index
    assert index.get("ab").ids == ("ab1", "ab2", "ab3")
    index = tuple_bucket_remove(index, "ab", "ab2", gen=2)
    assert index.get("ab").ids == ("ab1", "ab3") and before.get("ab").ids == ("ab1", "ab2", "ab3")
    assert tuple_bucket_remove(index, "ab", "missing", gen=3) is index
    index = tuple_bucket_remove(tuple_bucket_remove(index, "ab", "ab1", gen=3), "ab", "ab3", gen=3)
    assert index.get("ab") is None and len(index) == 0


def _leaf_sizes_ok(m: CowMap) -> bool:
    """Every leaf is within `_LEAF_MAX`, and the size matches the entries."""
    from yurt.state.cow import _LEAF_MAX

    return all(len(leaf) <= _LEAF_MAX for leaf in m._leaves()) and sum(1 for _ in m.items()) == len(m)


def test_bulk_update_into_a_deep_trie_leaves_snapshots_alone():
    base = EMPTY.update([(f"id-{i}", i) for i in range(20_000)], gen=1)  # 3 levels
    frozen = base.to_dict()
    new = base.update([(f"id-{i}", -i) for i in range(0, 20_000, 7)] + [(f"new-{i}", i) for i in range(3_000)], gen=2)
    assert base.to_dict() == frozen and len(base) == 20_000
    expected = dict(frozen)
    expected.update({f"id-{i}": -i for i in range(0, 20_000, 7)})
    expected.update({f"new-{i}": i for i in range(3_000)})
    assert new.to_dict() == expected and len(new) == len(expected)
    assert _leaf_sizes_ok(base) and _leaf_sizes_ok(new)
    again = new.update([(f"new-{i}", 0) for i in range(10)] + [("late", 1)] * 9, gen=2)  # same generation: in place
    assert again is new and new.get("late") == 1 and new.get("new-3") == 0 and len(new) == len(expected) + 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "many", "tuple", "remove"]), st.integers(0, 8),
                          st.lists(st.integers(0, 300), min_size=1, max_size=80)), max_size=40),
       st.integers(0, 2**32))
def test_bucket_helpers_match_a_model_with_snapshots(ops, seed):
    rng = random.Random(seed)
    sets, tuples = EMPTY, EMPTY
    set_model: dict[int, dict] = {}
    tuple_model: dict[int, tuple] = {}
    saved = []
    gen = new_generation()
    for op, key, members in ops:
        if rng.random() < 0.3:
            saved.append((sets, tuples, {k: dict(v) for k, v in set_model.items()}, dict(tuple_model)))
            gen = new_generation()
        if op == "add":
            sets = bucket_add(sets, key, members[0], gen, value=gen)
            set_model.setdefault(key, {})[members[0]] = gen
        elif op == "many":
            sets = bucket_add_many(sets, key, [(m, gen) for m in members], gen)
            set_model.setdefault(key, {}).update((m, gen) for m in members)
        elif op == "tuple":
            new = [m for m in dict.fromkeys(members) if m not in tuple_model.get(key, ())]
            if new:
                tuples = tuple_bucket_add(tuples, key, new, gen)
                tuple_model[key] = (*tuple_model.get(key, ()), *new)
        else:
            sets = bucket_remove(sets, key, members[0], gen)
            if members[0] in set_model.get(key, {}):
                del set_model[key][members[0]]
                if not set_model[key]:
                    del set_model[key]
    saved.append((sets, tuples, set_model, tuple_model))
    for s, t, s_model, t_model in saved:
        assert {k: b.to_dict() for k, b in s.items()} == s_model and len(s) == len(s_model)
        assert {k: g.ids for k, g in t.items()} == t_model and len(t) == len(t_model)
