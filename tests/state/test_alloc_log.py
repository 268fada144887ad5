"""The per-node alloc change log (`tables.NodeAllocLog`, `StateReader.alloc_ids_changed_since`):
"the node's allocs with AllocModifyIndex > K" answered without a scan of the node's map, and
exactly what the scan answers, for every version of the tables a snapshot may still hold."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yurt.state import tables as tables_mod
from yurt.state.persist import decode_tables, encode_tables
from yurt.state.tables import StateReader, Tables
from yurt.state.txn import Txn
from yurt.structs import Allocation, evolve

NODES = ("n1", "n2", "n3")


def _alloc(alloc_id: str, node_id: str, index: int) -> Allocation:
    return Allocation(id=alloc_id, namespace="default", eval_id="e1", job_id="j1", task_group="web",
                      node_id=node_id, desired_status="run", client_status="pending", alloc_modify_index=index)


def _expected(t: Tables, node_id: str, since: int) -> list[str]:
    """Brute force, from the allocs table itself."""
    return sorted(a.id for a in t.allocs.values() if a.node_id == node_id and (since <= 0 or a.alloc_modify_index > since))


def _check(t: Tables) -> None:
    reader = StateReader(t)
    marks = {a.alloc_modify_index for a in t.allocs.values()}
    for since in {0, 1, *marks, *(m - 1 for m in marks), *(m + 1 for m in marks)}:
        for node_id in NODES:
            got = reader.alloc_ids_changed_since(node_id, since)
            assert len(got) == len(set(got)), got  # each ID once
            assert sorted(got) == _expected(t, node_id, since), (node_id, since)


@pytest.fixture
def no_scan(monkeypatch):
    """States written through `Txn` answer from the log: the scan fallback must not run."""

    def refuse(versions, since):
        raise AssertionError("scanned the node's version map")

    monkeypatch.setattr(tables_mod, "scan_changed", refuse)


def _txn(t: Tables, gen: int) -> Txn:
    return Txn(t, gen, t.index + 1)


def test_a_snapshot_taken_before_a_write_answers_as_before(no_scan):
    t0 = Tables()
    txn = _txn(t0, 1)
    for i in range(5):
        txn.put_alloc(_alloc(f"a{i}", "n1", 1))
    t1 = txn.commit()
    txn = _txn(t1, 2)
    txn.put_alloc(_alloc("a5", "n1", 2))  # new
    txn.put_alloc(evolve(t1.allocs.get("a0"), alloc_modify_index=2))  # changed
    t2 = txn.commit()
    old, new = StateReader(t1), StateReader(t2)
    assert old.alloc_ids_changed_since("n1", 1) == []
    assert sorted(old.alloc_ids_changed_since("n1", 0)) == ["a0", "a1", "a2", "a3", "a4"]
    assert new.alloc_ids_changed_since("n1", 1) == ["a5", "a0"]  # in the order written
    # a third version from the old one (two writers from one base: the second one forks the log)
    txn = _txn(t1, 3)
    txn.put_alloc(evolve(t1.allocs.get("a3"), alloc_modify_index=2))
    t3 = txn.commit()
    assert StateReader(t3).alloc_ids_changed_since("n1", 1) == ["a3"]
    assert new.alloc_ids_changed_since("n1", 1) == ["a5", "a0"]
    assert old.alloc_ids_changed_since("n1", 1) == []
    for t in (t1, t2, t3):
        _check(t)


def test_a_dropped_transaction_leaves_no_trace(no_scan):
    txn = _txn(Tables(), 1)
    txn.put_alloc(_alloc("a0", "n1", 1))
    t1 = txn.commit()
    dropped = _txn(t1, 2)
    dropped.put_alloc(_alloc("x", "n1", 2))  # appended to the shared log, never committed
    txn = _txn(t1, 3)
    txn.put_alloc(_alloc("a1", "n1", 2))
    t3 = txn.commit()
    assert StateReader(t3).alloc_ids_changed_since("n1", 1) == ["a1"]
    assert StateReader(t1).alloc_ids_changed_since("n1", 0) == ["a0"]
    _check(t3)


def test_removals_and_moves_and_the_log_stays_bounded(no_scan):
    t = Tables()
    txn = _txn(t, 1)
    txn.batch_new_allocs()
    for i in range(10):
        txn.put_alloc(_alloc(f"a{i}", "n1", 1))
    t = txn.commit()
    for gen in range(2, 400):  # many writes to few allocs: the log is rebuilt, never grows past 2x + 64
        txn = _txn(t, gen)
        a = t.allocs.get(f"a{gen % 10}")
        txn.put_alloc(evolve(a, alloc_modify_index=t.index + 1))
        t = txn.commit()
        n = t.allocs_by_node.get("n1")._log_n
        assert n <= 2 * 10 + 64 + 1
    _check(t)
    txn = _txn(t, 500)
    txn.delete_alloc("a1")
    txn.put_alloc(evolve(t.allocs.get("a2"), node_id="n2", alloc_modify_index=t.index + 1))  # moved
    t = txn.commit()
    assert "a1" not in StateReader(t).alloc_ids_changed_since("n1", 0)
    assert StateReader(t).alloc_ids_changed_since("n2", t.index - 1) == ["a2"]
    _check(t)
    txn = _txn(t, 501)
    for a in list(t.allocs.values()):
        txn.delete_alloc(a.id)
    t = txn.commit()
    assert t.allocs_by_node.get("n1") is None and t.allocs_by_node.get("n2") is None
    _check(t)


def test_a_map_written_around_the_log_is_scanned():
    txn = _txn(Tables(), 1)
    txn.put_alloc(_alloc("a0", "n1", 1))
    t = txn.commit()
    t = t.copy()  # a new version (generation 2) whose map is written without the log
    t.allocs_by_node = t.allocs_by_node.assoc("n1", t.allocs_by_node.get("n1").assoc("b", 7, 2), 2)
    assert StateReader(t).alloc_ids_changed_since("n1", 1) == ["b"]
    txn = _txn(t, 3)  # the next write through Txn rebuilds the log from the map
    txn.put_alloc(_alloc("a1", "n1", 8))
    t = txn.commit()
    assert sorted(StateReader(t).alloc_ids_changed_since("n1", 1)) == ["a1", "b"]
    assert t.allocs_by_node.get("n1")._log is not None


def test_a_restored_state_has_the_log(no_scan):
    txn = _txn(Tables(), 1)
    for i in range(4):
        txn.put_alloc(_alloc(f"a{i}", NODES[i % 3], i + 1))
    t = txn.commit()
    t.index = 4
    restored = decode_tables(encode_tables(t))
    _check(restored)
    assert StateReader(restored).alloc_ids_changed_since("n1", 1) == ["a3"]


_ops = st.lists(st.tuples(st.sampled_from(["new", "bump", "same", "lower", "move", "delete", "batch"]),
                          st.integers(0, 7), st.sampled_from(NODES)), min_size=1, max_size=6)


def _write(txn: Txn, ops) -> None:
    for kind, n, node_id in ops:
        alloc_id = f"a{n}"
        old = txn._t.allocs.get(alloc_id)
        if kind == "batch":
            txn.batch_new_allocs()
        elif kind == "new" and old is None:
            txn.put_alloc(_alloc(alloc_id, node_id, txn.index))
        elif old is None:
            continue
        elif kind == "bump":
            txn.put_alloc(evolve(old, alloc_modify_index=txn.index))
        elif kind == "same":
            txn.put_alloc(evolve(old, client_status="running"))
        elif kind == "lower":
            txn.put_alloc(evolve(old, alloc_modify_index=max(1, old.alloc_modify_index - 2)))
        elif kind == "move":
            txn.put_alloc(evolve(old, node_id=node_id, alloc_modify_index=txn.index))
        elif kind == "delete":
            txn.delete_alloc(alloc_id)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(_ops, min_size=1, max_size=3), st.booleans(), st.integers(0, 3)),
                min_size=1, max_size=20))
def test_every_version_answers_what_a_scan_answers(no_scan, steps):
    """Random writes (new allocs, AllocModifyIndex raised, kept or lowered, moves, deletions,
    batched new allocs) in batches of transactions sharing one generation (as
    `StateStore.apply_batch`), batches dropped, and batches starting from an older version:
    every version kept answers exactly what the brute force answers, through the log."""
    walk_versions(steps, _write, _check)


def walk_versions(steps, write, check) -> None:
    """Apply `steps` (hypothesis: batches of `write(txn, ops)` transactions sharing one
    generation, each batch dropped or kept, from the newest version or an older one) and
    `check` every kept version after each batch."""
    versions = [Tables()]
    index = 0
    for gen, (batch, drop, back) in enumerate(steps, start=1):
        t = versions[max(0, len(versions) - 1 - back)]
        for ops in batch:
            index += 1
            txn = Txn(t, gen, index)
            write(txn, ops)
            t = txn.commit()
        if not drop:
            versions.append(t)
        for kept in versions:
            check(kept)
