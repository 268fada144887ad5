"""The allocs table's `HintedCowMap`: a plan's allocs (IDs sharing a locality hint per run)
share few trie leaves; keys without a hint (tests' "a1", foreign IDs) still work."""

import random
import types
import uuid

from yurt.scheduler.placement import PlanBuilder
from yurt.state import cow
from yurt.state.cow import EMPTY_HINTED, CowMap, HintedCowMap, hinted_hash, new_generation
from yurt.state.tables import Tables


def _builder_ids(n: int, seed: int) -> list[str]:
    builder = types.SimpleNamespace(_id_pool=[], _ids=random.Random(seed))
    return [PlanBuilder._alloc_id(builder) for _ in range(n)]


def _leaves(m: CowMap, keys: list[str]) -> int:
    seen = set()
    for key in keys:
        node, h, shift = m._root, m._slot_hash(key), 0
        while type(node) is list:
            node = node[(h >> shift) & cow._MASK]
            shift += cow._BITS
        assert key in node
        seen.add(id(node))
    return len(seen)


def _fill(m: CowMap, plans: int) -> CowMap:
    gen = new_generation()
    for p in range(plans):
        m = m.update(((i, i) for i in _builder_ids(1000, p)), gen)
    return m


def test_the_allocs_table_is_hinted():
    assert type(Tables().allocs) is HintedCowMap
    assert type(Tables().jobs) is CowMap  # (only the allocs table)


def test_a_plans_allocs_share_few_leaves_and_a_new_generation_copies_few_nodes():
    m = _fill(EMPTY_HINTED, 60)
    assert m._gen != 0 and len(m) == 60_000
    ids = _builder_ids(1000, 999)
    gen = new_generation()
    snapshot = m
    for i in ids:
        m = m.assoc(i, i, gen)
    assert _leaves(m, ids) <= 40  # ~32 runs of 32; random IDs: ~700 of the ~1,000 leaves
    assert len(cow._fresh_set(gen)) <= 120  # leaves + branches copied or made in this generation
    assert all(snapshot.get(i) is None for i in ids) and all(m.get(i) == i for i in ids)
    # the same in a plain CowMap (random slots): one leaf per alloc, near enough
    plain = _fill(CowMap(), 60)
    gen = new_generation()
    for i in ids:
        plain = plain.assoc(i, i, gen)
    assert _leaves(plain, ids) > 500


def test_a_client_update_batch_of_recent_allocs_touches_few_leaves():
    m = _fill(EMPTY_HINTED, 40)
    recent = _builder_ids(1000, 77) + _builder_ids(1000, 78)
    gen = new_generation()
    m = m.update(((i, 0) for i in recent), gen)
    picked = random.Random(3).sample(recent, 175)
    gen = new_generation()
    m = m._owned(gen)
    for i in picked:
        leaf = m._writable_path(i, gen)[0]
        leaf[i] = 1
    assert _leaves(m, picked) <= 66  # (of the ~63 runs of the two plans)
    assert all(m.get(i) == 1 for i in picked)


def test_unhinted_and_odd_keys_behave_as_a_dict():
    rng = random.Random(11)
    keys = [f"a{i}" for i in range(3000)]
    keys += [str(uuid.uuid4()) for _ in range(3000)]  # foreign IDs: a random "hint"
    keys += [str(uuid.uuid4())[:32] + "zzzz" for _ in range(500)]  # 36 chars, tail not hex
    keys += [str(uuid.uuid4())[:32] + "0abc" for _ in range(2000)]  # all one hint: splits by hash below
    keys += ["x" * 36, " " * 36, "0x" + "1" * 34]
    model: dict = {}
    m: CowMap = EMPTY_HINTED
    gen = new_generation()
    snapshots = []
    for n, key in enumerate(keys):
        if n % 997 == 0:
            snapshots.append((m, dict(model)))
            gen = new_generation()
        m = m.assoc(key, n, gen)
        model[key] = n
    assert type(m) is HintedCowMap
    gen = new_generation()
    for key in rng.sample(keys, 1500):
        m = m.dissoc(key, gen)
        del model[key]
    gen = new_generation()
    more = {f"b{i}": i for i in range(500)}
    m = m.update(more.items(), gen)
    model.update(more)
    m = m.merge_with({k: 1 for k in keys[:300]}, lambda old, v: (old or 0) + v, gen)
    for k in keys[:300]:
        if k in model:
            model[k] += 1
        else:
            model[k] = 1
    assert len(m) == len(model) and m.to_dict() == model
    assert all(m.get(k) == v for k, v in model.items())
    assert m.get("missing") is None and "a" * 36 not in m
    for snap, expected in snapshots:  # older versions never saw later writes
        assert snap.to_dict() == expected


def test_hinted_hash_takes_the_low_15_bits_from_the_tail():
    key = str(uuid.uuid4())[:32] + "f123"
    assert hinted_hash(key) & 0x7FFF == 0xF123 & 0x7FFF
    assert hinted_hash(key) >> 15 == hash(key) >> 15
    assert hinted_hash("a1") == hash("a1")
    assert hinted_hash("y" * 36) == hash("y" * 36)


def test_a_restored_allocs_table_is_hinted():
    from yurt.state.persist import decode_tables, encode_tables

    assert type(decode_tables(encode_tables(Tables())).allocs) is HintedCowMap
