"""The plan applier tells `apply_plan` which placed allocs its fit check found absent from
the state (`fsm_allocs.absent_at`), so the commit inserts them without looking each up
again. The state must be the same as without the hint: as a replay of the log (which has
no hint) builds it, and as `store.apply` of the same command builds it."""

from __future__ import annotations

import msgspec

from yurt.server.plan_apply import PlanApplier
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore, fsm_allocs
from yurt.structs import Plan, evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _allocs(store: StateStore) -> dict:
    return {a.id: msgspec.to_builtins(a) for a in store.snapshot().allocs()}


def _store_with(tmp_path=None, nodes=3):
    store = StateStore.open(str(tmp_path)) if tmp_path is not None else StateStore.open(None)
    node_objs = [mock_node() for _ in range(nodes)]
    for node in node_objs:
        store.apply(NodeRegister(node=node))
    job = mock_job(id="web")
    store.apply(JobRegister(job=job))
    return store, node_objs, store.snapshot().job_by_id(job.namespace, job.id)


def _apply_hinted(store: StateStore, cmd: PlanApply, hint_cmd, index: int, ids: set[str]) -> None:
    """`store.apply(cmd)` with the hint that `ids` (placed by `hint_cmd`) are absent at `index`."""
    if hint_cmd is not None:
        fsm_allocs.absent_at(hint_cmd, index, set(ids))
    try:
        store.apply(cmd)
    finally:
        fsm_allocs.absent_at(None)


def _plan(job, nodes, per_node=2) -> Plan:
    plan = Plan(eval_id="e1", job=job)
    for node in nodes:
        for i in range(per_node):
            plan.append_alloc(evolve(mock_alloc(job, node, i), job=None))
    return plan


def test_the_applier_uses_the_hint_and_a_replay_builds_the_same_state(tmp_path, monkeypatch):
    store, nodes, job = _store_with(tmp_path)
    used = []
    real = fsm_allocs._absent_ids

    def spy(txn, cmd):
        found = real(txn, cmd)
        used.append(len(found))
        return found

    monkeypatch.setattr(fsm_allocs, "_absent_ids", spy)
    applier = PlanApplier(store, lambda: 1_000)
    plan = _plan(job, nodes)
    result = applier.apply(plan)
    assert sum(len(v) for v in result.node_allocation.values()) == 6
    assert used == [6]  # every placement was known absent: no lookup at commit
    assert fsm_allocs._absent_hint is None  # forgotten after the commit
    before = _allocs(store)
    index = store.latest_index
    store.close()
    replayed = StateStore.open(str(tmp_path))
    try:
        assert replayed.latest_index == index
        assert _allocs(replayed) == before
    finally:
        replayed.close()


def test_an_alloc_listed_twice_updates_the_first_as_without_the_hint():
    """The first copy of an ID is inserted, the second updates it: the hint names each ID
    once and is used up, so the second copy is looked up."""
    outcomes = []
    for hinted in (False, True):
        store, nodes, job = _store_with(nodes=2)
        alloc = evolve(mock_alloc(job, nodes[0], 0), job=None)
        moved = evolve(alloc, node_id=nodes[1].id, node_name=nodes[1].name)
        cmd = PlanApply(eval_id="e1", job=job, node_allocation={nodes[0].id: [alloc], nodes[1].id: [moved]},
                        updated_at=5)
        _apply_hinted(store, cmd, cmd if hinted else None, store.latest_index, {alloc.id})
        snap = store.snapshot()
        stored = snap.alloc_by_id(alloc.id)
        outcomes.append(([n.id for n in nodes].index(stored.node_id), stored.create_index, stored.modify_index,
                         len(snap.allocs_by_node(nodes[0].id)), len(snap.allocs_by_node(nodes[1].id)),
                         len(snap.allocs())))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1 and outcomes[0][3:] == (0, 1, 1)  # it ends on the second node only


def test_a_hint_for_another_state_or_command_is_ignored():
    store, nodes, job = _store_with(nodes=1)
    alloc = evolve(mock_alloc(job, nodes[0], 0), job=None)
    store.apply(PlanApply(eval_id="e0", job=job, node_allocation={nodes[0].id: [alloc]}, updated_at=5))
    created = store.snapshot().alloc_by_id(alloc.id).create_index
    # the alloc is stored: a stale hint (an older index) must not make the update an insert
    update = PlanApply(eval_id="e1", job=job, node_allocation={nodes[0].id: [evolve(alloc, desired_description="x")]},
                       updated_at=6)
    _apply_hinted(store, update, update, store.latest_index - 1, {alloc.id})
    other = PlanApply(eval_id="e2", job=job, node_allocation={nodes[0].id: [evolve(alloc, desired_description="y")]},
                      updated_at=7)
    _apply_hinted(store, other, update, store.latest_index, {alloc.id})  # the hint names another command
    snap = store.snapshot()
    stored = snap.alloc_by_id(alloc.id)
    assert stored.create_index == created and stored.desired_description == "y"
    assert len(snap.allocs()) == 1 and len(snap.allocs_by_node(nodes[0].id)) == 1
    assert snap.job_summary(job.namespace, job.id).summary["web"].starting == 1
