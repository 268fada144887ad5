"""Random command sequences: secondary indexes and job status always agree with a
brute-force recomputation, and a snapshot restore reproduces the same state."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_fixtures import alloc, evaluation, job, node
from test_durability import _dump

from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    EvalDelete,
    EvalUpsert,
    JobDeregister,
    JobRegister,
    NodeRegister,
    PlanApply,
    StateError,
    StateStore,
)
from yurt.state.fsm_jobs import compute_job_status
from yurt.state.persist import decode_tables, encode_tables
from yurt.state.tables import StateSnapshot
from yurt.state.txn import Txn
from yurt.structs import evolve

JOBS = ("a", "b", "c")
NODES = ("n1", "n2")
CLIENT = ("pending", "running", "complete", "failed", "lost")


def _command(store: StateStore, draw) -> object | None:
    snap = store.snapshot()
    kind = draw(st.sampled_from(["register", "dereg", "place", "stop", "client", "eval", "gc"]))
    job_id = draw(st.sampled_from(JOBS))
    stored = snap.job_by_id("default", job_id)
    allocs = snap.allocs()
    evals = snap.evals()
    if kind == "register":
        j = job(job_id, type=draw(st.sampled_from(["service", "batch"])), meta={"m": str(draw(st.integers(0, 2)))})
        return JobRegister(job=j, eval=evaluation(j) if draw(st.booleans()) else None)
    if kind == "dereg" and stored is not None:
        return JobDeregister(namespace="default", job_id=job_id, purge=draw(st.booleans()), eval=evaluation(stored))
    if kind == "place" and stored is not None:
        ev = evaluation(stored, status="complete")
        placed = [alloc(stored, draw(st.sampled_from(NODES)), ev.id, idx=i) for i in range(draw(st.integers(1, 3)))]
        by_node: dict = {}
        for a in placed:
            by_node.setdefault(a.node_id, []).append(a)
        return PlanApply(eval_id=ev.id, job=stored, node_allocation=by_node, evals=[ev])
    if kind == "stop" and allocs:
        a = draw(st.sampled_from(allocs))
        return PlanApply(eval_id=a.eval_id, node_update={a.node_id: [evolve(a, desired_status="stop", job=None)]})
    if kind == "client" and allocs:
        a = draw(st.sampled_from(allocs))
        return AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status=draw(st.sampled_from(CLIENT)))])
    if kind == "eval" and evals:
        e = draw(st.sampled_from(evals))
        return EvalUpsert(evals=[evolve(e, status=draw(st.sampled_from(["pending", "complete", "blocked"])))])
    if kind == "gc" and evals:
        e = draw(st.sampled_from(evals))
        return EvalDelete(eval_ids=[e.id], alloc_ids=[a.id for a in snap.allocs_by_eval(e.id)])
    return None


def _check_indexes(snap: StateSnapshot) -> None:
    allocs, evals = snap.allocs(), snap.evals()
    for n in NODES:
        assert [a.id for a in snap.allocs_by_node(n)] == [a.id for a in allocs if a.node_id == n]
        assert dict(snap.alloc_versions_by_node(n).items()) == {
            a.id: a.alloc_modify_index for a in allocs if a.node_id == n}
    for j in JOBS:
        assert [a.id for a in snap.allocs_by_job("default", j)] == [a.id for a in allocs if a.job_id == j]
        assert [e.id for e in snap.evals_by_job("default", j)] == [e.id for e in evals if e.job_id == j]
    for e in evals:
        assert [a.id for a in snap.allocs_by_eval(e.id)] == [a.id for a in allocs if a.eval_id == e.id]
    for prefix in ("", "a", "al", "alloc000", "e", "eval0000"):
        assert [a.id for a in snap.by_prefix("allocs", prefix)] == [a.id for a in allocs if a.id.startswith(prefix)]
        assert [e.id for e in snap.by_prefix("evals", prefix)] == [e.id for e in evals if e.id.startswith(prefix)]


def _brute_force_status(snap: StateSnapshot, j) -> str:
    allocs = snap.allocs_by_job(j.namespace, j.id)
    evals = snap.evals_by_job(j.namespace, j.id)
    if any(not a.terminal for a in allocs):
        return "running"
    if any(not e.terminal for e in evals):
        return "pending"
    return "dead" if allocs or evals else "pending"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_commands_keep_indexes_and_restore_exactly(data):
    store = StateStore.open(None)
    store.apply_batch([NodeRegister(node=node(n)) for n in NODES])
    for _ in range(data.draw(st.integers(5, 40))):
        cmd = _command(store, data.draw)
        if cmd is None:
            continue
        try:
            store.apply(cmd)
        except StateError:
            pass
    snap = store.snapshot()
    _check_indexes(snap)
    txn = Txn(store._tables, gen=10**9, index=snap.index)
    for j in snap.jobs():
        assert compute_job_status(txn, j) == _brute_force_status(snap, j)
        if snap.evals_by_job(j.namespace, j.id) or snap.allocs_by_job(j.namespace, j.id):
            assert j.status == compute_job_status(txn, j), j.id
    restored = StateSnapshot(decode_tables(encode_tables(store._tables)))
    assert _dump(restored) == _dump(snap)
    _check_indexes(restored)
