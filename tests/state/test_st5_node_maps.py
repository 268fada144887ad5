"""`allocs_by_node` as one plain dict per generation (`cow.FlatMap`, wt-st5): every committed
version keeps its own node maps whatever later generations write (new allocs batched or one
at a time, AllocModifyIndex changes, moves, deletes), the map answers as the trie did, and the
per-node watch keys a plan or a client update touches are the ones a write per alloc touched."""

import random

import pytest

from yurt.state.cow import EMPTY_FLAT, FlatMap, new_generation
from yurt.state.tables import StateReader, Tables
from yurt.state.txn import Txn, node_allocs_key, node_usage_key
from yurt.structs import Allocation, evolve


def _alloc(alloc_id: str, node_id: str, index: int, status: str = "pending") -> Allocation:
    return Allocation(id=alloc_id, namespace="default", eval_id="e1", job_id="j1", task_group="web",
                      node_id=node_id, desired_status="run", client_status=status, alloc_modify_index=index)


def _maps(t: Tables) -> dict:
    return {node_id: bucket.to_dict() for node_id, bucket in t.allocs_by_node.items()}


def test_flat_map_copies_once_per_generation_and_never_writes_a_committed_one():
    a = EMPTY_FLAT.assoc("n1", 1, 5)
    assert EMPTY_FLAT.to_dict() == {} and a.to_dict() == {"n1": 1}
    assert a.assoc("n2", 2, 5) is a  # the same generation writes in place
    b = a.assoc("n3", 3, 6)
    assert b is not a and a.to_dict() == {"n1": 1, "n2": 2} and b.to_dict() == {"n1": 1, "n2": 2, "n3": 3}
    c = b.dissoc("n1", 7)
    assert "n1" in b and "n1" not in c and len(c) == 2 and b.dissoc("nope", 8) is b
    assert sorted(c.keys()) == ["n2", "n3"] and sorted(c.values()) == [2, 3] and bool(FlatMap()) is False
    with pytest.raises(ValueError):
        c.assoc("x", 1, 6)  # an older generation than the map's


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_committed_version_keeps_its_node_maps(seed):
    rng = random.Random(seed)
    nodes = [f"node-{n}" for n in range(40)]
    t = Tables()
    versions: list[tuple[Tables, dict, dict]] = []
    live: list[str] = []
    for step in range(60):
        txn = Txn(t, new_generation(), t.index + 1)
        kind = rng.random()
        if kind < 0.5 or not live:  # a plan's new allocs, batched
            txn.batch_new_allocs()
            for k in range(rng.randint(1, 60)):
                alloc_id = f"a{step}-{k}"
                txn.put_alloc(_alloc(alloc_id, rng.choice(nodes), txn.index))
                live.append(alloc_id)
        elif kind < 0.7:  # AllocModifyIndex changes (and a move now and then), one at a time
            for alloc_id in rng.sample(live, min(len(live), 5)):
                old = t.allocs.get(alloc_id)
                node_id = rng.choice(nodes) if rng.random() < 0.3 else old.node_id
                txn.put_alloc(evolve(old, node_id=node_id, alloc_modify_index=txn.index))
        elif kind < 0.85:  # deletes
            for alloc_id in rng.sample(live, min(len(live), 8)):
                txn.delete_alloc(alloc_id)
                live.remove(alloc_id)
        else:  # a client update: no node map is written
            txn.rewrite_allocs([type("U", (), {"id": i})() for i in rng.sample(live, min(len(live), 10))],
                               lambda stored, _u: evolve(stored, client_status="running"))
        t = txn.commit()
        reader = StateReader(t)
        since = max(0, t.index - 3)
        versions.append((t, _maps(t), {n: sorted(reader.alloc_ids_changed_since(n, since)) for n in nodes}))
        expected: dict[str, dict] = {}
        for alloc in t.allocs.values():
            expected.setdefault(alloc.node_id, {})[alloc.id] = alloc.alloc_modify_index
        assert _maps(t) == expected  # the index answers as the table holds
    for t, maps, changed in versions:  # and no later generation wrote into an earlier version's maps
        reader = StateReader(t)
        since = max(0, t.index - 3)
        assert _maps(t) == maps
        assert {n: sorted(reader.alloc_ids_changed_since(n, since)) for n in nodes} == changed


def test_a_plan_and_a_client_update_touch_the_keys_one_write_per_alloc_touches():
    base = Tables()
    txn = Txn(base, new_generation(), 1)
    for k in range(6):
        txn.put_alloc(_alloc(f"old-{k}", f"n{k % 3}", 1))
    base = txn.commit()
    results = []
    for batched in (False, True):
        txn = Txn(base, new_generation(), base.index + 1)
        if batched:
            txn.batch_new_allocs()
        for k in range(9):
            txn.put_alloc(_alloc(f"new-{k}", f"n{k % 5}", 2))
        t = txn.commit()
        results.append((sorted(txn.touched), {k: v for k, v in t.indexes.items()}, _maps(t)))
    assert results[0] == results[1]
    touched = results[1][0]
    assert all(node_allocs_key(f"n{k}") in touched and node_usage_key(f"n{k}") in touched for k in range(5))
    t = base
    txn = Txn(t, new_generation(), t.index + 1)
    txn.rewrite_allocs([type("U", (), {"id": "old-0"})(), type("U", (), {"id": "old-1"})()],
                       lambda stored, _u: evolve(stored, client_status="failed" if stored.id == "old-0" else "running"))
    t2 = txn.commit()
    assert txn.touched == {"allocs", node_allocs_key("n0"), node_allocs_key("n1"), node_usage_key("n0")}
    assert t2.indexes[node_allocs_key("n1")] == 2 and t2.indexes[node_usage_key("n0")] == 2
    assert node_usage_key("n1") not in t2.indexes or t2.indexes[node_usage_key("n1")] == 1
    assert t2.allocs_by_node is t.allocs_by_node  # a status report writes no node map


def test_a_group_loses_one_id_and_keeps_the_other_chunks():
    from yurt.state.cow import group_without, grown_group

    group = grown_group(grown_group(grown_group(None, ["a", "b"]), ["c"]), ["d", "e"])
    rest = group_without(group, "d")
    assert rest.ids == ("a", "b", "c", "e") and rest.chunks[0] is group.chunks[0] and rest.chunks[1] is group.chunks[1]
    rest = group_without(rest, "c")
    assert rest.ids == ("a", "b", "e") and len(rest.chunks) == 2  # (an emptied chunk is dropped)
    assert group_without(group_without(group_without(rest, "a"), "b"), "e") is None


def test_groups_are_flattened_at_different_folds():
    """A fold adds one chunk to every group of similar size: they must not all copy their IDs
    in the same fold (a pause of the whole index's IDs in one commit)."""
    from yurt.state import cow

    groups = {p: cow.grown_group(None, [f"{p}-{k}" for k in range(p)]) for p in range(1, 9)}
    flattened_at: dict[int, int] = {}
    for fold in range(1, 2 * cow._GROUP_CHUNKS):
        for p, group in groups.items():
            grown = cow.grown_group(group, [f"{p}-f{fold}"])
            if len(grown.chunks) == 1 and p not in flattened_at:
                flattened_at[p] = fold
            assert len(grown.chunks) <= cow._GROUP_CHUNKS and list(grown) == [*group, f"{p}-f{fold}"]
            groups[p] = grown
    assert len(flattened_at) == 8 and len(set(flattened_at.values())) == 8
