"""Alloc ID prefix lookups while new IDs wait in `Tables.alloc_tail` and are folded into
`allocs_by_prefix` in batches (`Txn._fold_alloc_tail`): every version of the tables answers
exactly what a scan of its allocs table answers, across folds, deletions, IDs added again,
dropped transactions and writers that start from an older version."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_alloc_log import walk_versions

from yurt.state import txn as txn_mod
from yurt.state.persist import decode_tables, encode_tables
from yurt.state.tables import ALLOC_PREFIX_LEN, StateReader, Tables
from yurt.state.txn import Txn
from yurt.structs import Allocation

# IDs that share 4-character groups and 1-3 character prefixes
IDS = [f"{a}{b}{c}-{n}" for a in "ab" for b in "01" for c in "xy" for n in range(3)]
PREFIXES = ("", "a", "b1", "a0x", "b0y", "a1x-", "b1y-", "a0x-1", "b0y-2", "zz", "a0x-9")


def _alloc(alloc_id: str) -> Allocation:
    return Allocation(id=alloc_id, namespace="default", eval_id="e1", job_id="j1", task_group="web",
                      node_id="n1", desired_status="run", client_status="pending", alloc_modify_index=1)


def check_prefix_lookups(t: Tables) -> None:
    """Every prefix lookup of `PREFIXES` and of the IDs' own prefixes answers the scan's."""
    reader = StateReader(t)
    present = sorted(t.allocs.to_dict())
    for prefix in {*PREFIXES, *(i[:k] for i in present for k in (1, 2, 3))}:
        got = [a.id for a in reader.by_prefix("allocs", prefix)]
        assert got == [i for i in present if i.startswith(prefix)], prefix


@pytest.fixture
def small_fold(monkeypatch):
    monkeypatch.setattr(txn_mod, "ALLOC_TAIL_FOLD", 3)


def test_ids_are_found_before_and_after_the_fold(small_fold):
    t = Tables()
    for gen, ids in enumerate((["a0x-0", "a0x-1"], ["b1y-0"], ["a0y-2", "a1x-0"]), start=1):
        txn = Txn(t, gen, t.index + 1)
        txn.batch_new_allocs()
        for i in ids:
            txn.put_alloc(_alloc(i))
        t = txn.commit()
        check_prefix_lookups(t)
    assert t.alloc_tail_n == 0 and len(t.allocs_by_prefix) == 4  # folded: 5 IDs past 3
    txn = Txn(t, 10, t.index + 1)
    txn.delete_alloc("a0x-0")  # in a group
    txn.put_alloc(_alloc("a0x-2"))  # waiting
    t2 = txn.commit()
    assert [a.id for a in StateReader(t2).by_prefix("allocs", "a0x")] == ["a0x-1", "a0x-2"]
    assert [a.id for a in StateReader(t).by_prefix("allocs", "a0x")] == ["a0x-0", "a0x-1"]  # the old version
    check_prefix_lookups(t2)


def test_a_deleted_waiting_id_added_again_is_listed_once(small_fold):
    txn = Txn(Tables(), 1, 1)
    txn.put_alloc(_alloc("a0x-0"))
    txn.delete_alloc("a0x-0")
    t = txn.commit()
    assert StateReader(t).by_prefix("allocs", "a") == []
    txn = Txn(t, 2, 2)
    txn.put_alloc(_alloc("a0x-0"))
    assert [a.id for a in StateReader(txn.commit()).by_prefix("allocs", "a0")] == ["a0x-0"]  # waiting twice
    txn = Txn(t, 3, 2)
    txn.put_alloc(_alloc("a0x-0"))
    txn.put_alloc(_alloc("a0x-1"))
    txn.put_alloc(_alloc("a0x-2"))
    t = txn.commit()  # 4 waiting entries, one of them deleted: folded
    assert t.allocs_by_prefix.get("a0x-"[:ALLOC_PREFIX_LEN]).ids == ("a0x-0", "a0x-1", "a0x-2")
    check_prefix_lookups(t)


def test_a_waiting_id_deleted_then_added_again_is_folded_once(small_fold):
    t = Tables()
    for gen, (kind, ids) in enumerate((("new", ["a0x-0"]), ("delete", ["a0x-0"]),
                                       ("new", ["a0x-0", "a0x-1", "a0x-2"])), start=1):
        txn = Txn(t, gen, t.index + 1)
        for i in ids:
            txn.put_alloc(_alloc(i)) if kind == "new" else txn.delete_alloc(i)
        t = txn.commit()
    assert t.alloc_tail_n == 0 and t.allocs_by_prefix.get("a0x-"[:ALLOC_PREFIX_LEN]).ids == ("a0x-0", "a0x-1", "a0x-2")
    check_prefix_lookups(t)


def test_a_restored_state_finds_every_id(small_fold):
    txn = Txn(Tables(), 1, 1)
    for i in IDS[:7]:
        txn.put_alloc(_alloc(i))
    t = txn.commit()
    restored = decode_tables(encode_tables(t))
    check_prefix_lookups(restored)
    assert restored.alloc_tail_n == 0  # the restore's 7 IDs were folded


_ops = st.lists(st.tuples(st.sampled_from(["new", "delete", "batch"]), st.sampled_from(IDS)), min_size=1, max_size=6)


def _write(txn: Txn, ops) -> None:
    for kind, alloc_id in ops:
        if kind == "batch":
            txn.batch_new_allocs()
        elif kind == "new" and txn._t.allocs.get(alloc_id) is None:
            txn.put_alloc(_alloc(alloc_id))
        elif kind == "delete":
            txn.delete_alloc(alloc_id)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(_ops, min_size=1, max_size=3), st.booleans(), st.integers(0, 3)),
                min_size=1, max_size=12))
def test_every_version_answers_what_a_scan_answers(small_fold, steps):
    walk_versions(steps, _write, check_prefix_lookups)


def test_merge_with_equals_one_write_at_a_time():
    """`CowMap.merge_with` (the fold's batch write) gives what a `get` and an `assoc` per key
    give, on maps of every depth, and leaves the map it started from as it was."""
    from yurt.state.cow import EMPTY

    def combine(current, new):
        return (current or ()) + (new,)

    for size in (0, 5, 70, 3000):
        base = EMPTY.update([(f"k{i}", (i,)) for i in range(size)], 1)
        before = base.to_dict()
        entries = {f"k{i}": -i for i in range(0, size + 200, 3)}
        merged = base.merge_with(entries, combine, 2)
        expected = base
        for key, value in entries.items():
            expected = expected.assoc(key, combine(expected.get(key), value), 3)
        assert merged.to_dict() == expected.to_dict() and len(merged) == len(expected)
        assert base.to_dict() == before and len(base) == size


def test_a_folded_id_a_dropped_transaction_queued_again_is_listed_once(small_fold):
    """A dropped transaction deleted a folded ID and added it again (so it waits in the
    shared tail); the version it started from folds that tail later: the ID, already in its
    group there, must not go in twice. (Found by hypothesis on the test above.)"""
    t = Tables()
    txn = Txn(t, 1, 1)
    for i in ("a0x-0", "a0y-1", "a0y-2", "a1x-0"):
        txn.put_alloc(_alloc(i))
    t = txn.commit()  # 4 IDs past 3: folded
    assert t.alloc_tail_n == 0
    dropped = Txn(t, 2, 2)
    dropped.delete_alloc("a0x-0")
    dropped.put_alloc(_alloc("a0x-0"))
    dropped.commit()  # not kept
    txn = Txn(t, 3, 2)
    for i in ("a0x-1", "a0x-2", "b0y-0"):
        txn.put_alloc(_alloc(i))
    t2 = txn.commit()  # folds the shared tail, the dropped write's a0x-0 with it
    assert t2.alloc_tail_n == 0
    assert [a.id for a in StateReader(t2).by_prefix("allocs", "a0x")] == ["a0x-0", "a0x-1", "a0x-2"]
    check_prefix_lookups(t2)
