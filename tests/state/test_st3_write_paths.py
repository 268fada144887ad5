"""The state-write shortcuts of wt-st3 keep every index exact: `allocs_by_prefix` as a plain
dict per version of chunked `IdGroup`s, the cached per-node watch keys, and the one walk per
node of `allocs_by_node` when a plan's new allocs are indexed."""

import pytest

from yurt.state import cow
from yurt.state import txn as txn_mod
from yurt.state.cow import IdGroup, grown_group, new_generation
from yurt.state.tables import StateReader, Tables
from yurt.state.txn import Txn, node_allocs_key, node_usage_key
from yurt.structs import Allocation, evolve


def _alloc(alloc_id: str, node_id: str = "n1", status: str = "pending", index: int = 1) -> Allocation:
    return Allocation(id=alloc_id, namespace="default", eval_id="e1", job_id="j1", task_group="web",
                      node_id=node_id, desired_status="run", client_status=status, alloc_modify_index=index)


def _commit(t: Tables, gen: int, write) -> Tables:
    txn = Txn(t, gen, t.index + 1)
    write(txn)
    return txn.commit()


def test_a_group_keeps_its_ids_in_order_across_many_chunks():
    group = None
    expected: list[str] = []
    for k in range(3 * cow._GROUP_CHUNKS + 1):
        members = [f"id-{k}-{m}" for m in range(k % 3)]
        group = grown_group(group, members)
        expected.extend(members)
        assert group.ids == tuple(expected)
        assert list(group) == expected and list(group.keys()) == expected
        assert len(group) == len(expected)
        assert len(group.chunks) <= cow._GROUP_CHUNKS
    assert "id-5-1" in group and "id-5-2" not in group and "id-23-1" in group
    assert grown_group(None, []).ids == () and len(grown_group(None, [])) == 0


def test_removal_keeps_the_others_in_order():
    index = cow.tuple_bucket_add(cow.EMPTY, "ab12", ["a"], 1)
    index = cow.tuple_bucket_add(index, "ab12", ["b", "c"], 1)
    index = cow.tuple_bucket_remove(index, "ab12", "b", 2)
    assert index.get("ab12").ids == ("a", "c")
    index = cow.tuple_bucket_remove(index, "ab12", "a", 3)
    index = cow.tuple_bucket_remove(index, "ab12", "c", 3)
    assert "ab12" not in index


def test_committed_prefix_groups_never_change(monkeypatch):
    """Folds and deletions write a new dict; every committed version keeps answering its own
    allocs (a write into a shared dict would show in an older version's lookups)."""
    monkeypatch.setattr(txn_mod, "ALLOC_TAIL_FOLD", 2)
    ids = [f"ab{c}{d}-{n}" for c in "01" for d in "xy" for n in range(12)]
    t = Tables()
    versions = []
    gen = new_generation()
    for start in range(0, len(ids), 3):
        gen = new_generation()
        t = _commit(t, gen, lambda txn: [txn.put_alloc(_alloc(i)) for i in ids[start:start + 3]])
        versions.append((t, {k: g.ids for k, g in t.allocs_by_prefix.items()}, sorted(t.allocs.keys())))
    for victim in ids[::5]:
        gen = new_generation()
        t = _commit(t, gen, lambda txn: txn.delete_alloc(victim))
        versions.append((t, {k: g.ids for k, g in t.allocs_by_prefix.items()}, sorted(t.allocs.keys())))
    for tables, groups, present in versions:
        assert {k: g.ids for k, g in tables.allocs_by_prefix.items()} == groups
        reader = StateReader(tables)
        for prefix in ("a", "ab", "ab0", "ab0x", "ab1y-", "ab0x-1", "ab1y-11", "zz"):
            assert [a.id for a in reader.by_prefix("allocs", prefix)] == [i for i in present if i.startswith(prefix)]
    final = versions[-1][0]
    grouped = [i for g in final.allocs_by_prefix.values() for i in g.ids] + final.alloc_tail.ids[:final.alloc_tail_n]
    assert sorted(grouped) == sorted(final.allocs.keys())  # every ID once, none lost


def test_node_keys_are_right_after_the_cache_clears(monkeypatch):
    monkeypatch.setattr(txn_mod, "_NODE_KEYS_MAX", 1)
    monkeypatch.setattr(txn_mod, "_NODE_KEYS", {})
    t = Tables()
    for gen, node_id in enumerate(("n1", "n2", "n1", "n3"), start=1):
        txn = Txn(t, gen, t.index + 1)
        txn.put_alloc(_alloc(f"a-{gen}", node_id))
        t = txn.commit()
        assert {node_allocs_key(node_id), node_usage_key(node_id)} <= txn.touched
        assert t.indexes[node_allocs_key(node_id)] == t.indexes[node_usage_key(node_id)] == txn.index


def test_a_status_report_touches_the_usage_key_only_when_liveness_changes():
    t = _commit(Tables(), 1, lambda txn: [txn.put_alloc(_alloc(i, "n1")) for i in ("a", "b")])
    merge = lambda stored, status: evolve(stored, client_status=status)  # noqa: E731
    txn = Txn(t, 2, t.index + 1)
    txn.rewrite_allocs([type("U", (), {"id": "a"})()], lambda stored, _u: merge(stored, "running"))
    t2 = txn.commit()
    assert node_allocs_key("n1") in txn.touched and node_usage_key("n1") not in txn.touched
    assert t2.indexes[node_allocs_key("n1")] == 2 and t2.indexes[node_usage_key("n1")] == 1
    txn = Txn(t2, 3, t2.index + 1)
    txn.rewrite_allocs([type("U", (), {"id": "b"})()], lambda stored, _u: merge(stored, "failed"))
    t3 = txn.commit()
    assert t3.indexes[node_usage_key("n1")] == 3 and t3.allocs.get("b").client_status == "failed"


@pytest.mark.parametrize("nodes", [3, 300])
def test_batched_node_maps_equal_one_at_a_time(nodes):
    """Hundreds of nodes in one plan split `allocs_by_node`'s leaves under the one walk per
    node: the same maps, sizes and logs as writing the allocs one at a time."""
    base = _commit(Tables(), 1, lambda txn: [txn.put_alloc(_alloc(f"old-{n}", f"node-{n}")) for n in range(0, nodes, 2)])
    allocs = [_alloc(f"new-{k}", f"node-{k % nodes}", index=2) for k in range(2 * nodes)]
    results = []
    for batched in (False, True):
        txn = Txn(base, 2 + batched, base.index + 1)
        if batched:
            txn.batch_new_allocs()
        for a in allocs:
            txn.put_alloc(a)
        t = txn.commit()
        by_node = t.allocs_by_node
        maps = {node_id: bucket.to_dict() for node_id, bucket in by_node.items()}
        assert len(by_node) == len(maps) == nodes
        assert all(len(b) == len(maps[n]) for n, b in by_node.items())
        reader = StateReader(t)
        changed = {n: sorted(reader.alloc_ids_changed_since(n, 1)) for n in maps}
        results.append((maps, changed, sorted(txn.touched)))
    assert results[0] == results[1]
    assert base.allocs_by_node.get("node-0").to_dict() == {"old-0": 1}  # the committed map is unchanged


def test_a_batch_shares_one_indexes_copy_and_keeps_the_committed_one():
    """The commands of one batch (one generation) write one copy of `indexes`: the same
    indexes as applying them one at a time, and the state before the batch keeps its own."""
    from yurt.testing.mock import mock_node
    from yurt.state.commands import NodeRegister
    from yurt.state.store import StateStore

    nodes = [mock_node(id=f"node-{i:02d}") for i in range(6)]
    one, batched = StateStore.open(None), StateStore.open(None)
    one.apply(NodeRegister(node=nodes[0]))
    batched.apply(NodeRegister(node=nodes[0]))
    before = batched.snapshot()
    before_indexes = dict(before._t.indexes)
    for n in nodes[1:]:
        one.apply(NodeRegister(node=n))
    batched.apply_batch([NodeRegister(node=n) for n in nodes[1:]])
    assert batched.snapshot()._t.indexes == one.snapshot()._t.indexes
    assert batched.snapshot()._t.indexes["nodes:node-05"] == 6
    assert before._t.indexes == before_indexes and "nodes:node-05" not in before._t.indexes


def test_owned_dict_is_written_in_place_only_by_its_own_generation():
    made = cow.owned_dict({"x": 1}, 7)
    assert cow.owned_dict(made, 7) is made  # this generation's: written in place
    other = {"y": 2}  # another writer's dict (say another store's), at the same generation
    copied = cow.owned_dict(other, 7)
    assert copied is not other and copied == other
    later = cow.owned_dict(made, 8)
    assert later is not made and later == made  # committed under 7: the next generation copies it
