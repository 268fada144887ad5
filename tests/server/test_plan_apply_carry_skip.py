"""The usage carrier skips client updates when no alloc went between terminal and not (the
state's per-job live counts are the same object): what the allocs hold did not change, so
it looks none of them up. When one did (running -> complete, lost -> running), it carries
the node's usage over as before, and that equals a recount."""

from __future__ import annotations

from yurt.scheduler import usage as usage_mod
from yurt.server import plan_apply
from yurt.server.plan_apply import PlanApplier
from yurt.state import AllocClientUpdate, AllocUpdate, JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import Plan, evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _placed(nodes=3):
    store = StateStore.open(None)
    node_objs = [mock_node() for _ in range(nodes)]
    store.apply_batch([NodeRegister(node=n) for n in node_objs])
    job = mock_job(id="web")
    store.apply(JobRegister(job=job))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    applier = PlanApplier(store, lambda: 1_000)
    plan = Plan(eval_id="e1", job=job)
    for i, node in enumerate(node_objs):
        plan.append_alloc(evolve(mock_alloc(job, node, i), job=None, eval_id="e1"))
    applier.apply(plan)
    return store, node_objs, job


def _lookups(monkeypatch) -> list:
    seen = []
    real = plan_apply._alloc_ids_by_node

    def spy(before, command, skip):
        seen.append(type(command).__name__)
        return real(before, command, skip)

    monkeypatch.setattr(plan_apply, "_alloc_ids_by_node", spy)
    return seen


def _assert_carried_equals_recount(store, node_ids):
    after = store.snapshot()
    for node_id in node_ids:
        node = after.node_by_id(node_id)
        base = usage_mod.cached_base(node, after.node_allocs_index(node_id))
        assert base is not None, node_id
        fresh = usage_mod.NodeBase(node, after.allocs_by_node(node_id), ())
        assert (base.free_cpu, base.free_mem, base.ports) == (fresh.free_cpu, fresh.free_mem, fresh.ports)


def test_running_reports_are_skipped_without_lookups(monkeypatch):
    store, nodes, _ = _placed()
    seen = _lookups(monkeypatch)
    ids = [a.id for a in store.snapshot().allocs()]
    before = store.snapshot()
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status="running") for i in ids], updated_at=2))
    assert before.liveness_token() is store.snapshot().liveness_token()
    assert "AllocClientUpdate" not in seen
    _assert_carried_equals_recount(store, [n.id for n in nodes])


def test_updates_that_change_what_allocs_hold_are_carried(monkeypatch):
    store, nodes, job = _placed()
    seen = _lookups(monkeypatch)
    first, *rest = sorted(store.snapshot().allocs(), key=lambda a: a.node_id)
    before = store.snapshot()
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=first.id, client_status="complete")], updated_at=2))
    assert before.liveness_token() is not store.snapshot().liveness_token()
    assert seen == ["AllocClientUpdate"]
    _assert_carried_equals_recount(store, [first.node_id])
    # marked lost by the server, then reported running again: it holds its resources again
    store.apply(PlanApply(eval_id="e2", job=job, updated_at=3,
                          node_update={rest[0].node_id: [evolve(rest[0], client_status="lost", job=None)]}))
    assert store.snapshot().alloc_by_id(rest[0].id).client_status == "lost"
    seen.clear()
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=rest[0].id, client_status="running")], updated_at=4))
    assert seen == ["AllocClientUpdate"]
    assert not store.snapshot().alloc_by_id(rest[0].id).terminal
    _assert_carried_equals_recount(store, [rest[0].node_id])
