"""On the real state store the scheduler keys its per-node usage cache on the store's
per-node usage index (`node_allocs_index`) and skips re-reading unchanged nodes. That
index must move exactly when what a node's allocs hold can change, and plans made with
the cache must equal plans made by re-reading every node."""

from __future__ import annotations

import uuid
from random import Random

from yurt.scheduler import new_scheduler
from yurt.scheduler import usage as usage_mod
from yurt.server.plan_apply import PlanApplier
from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    JobRegister,
    NodeRegister,
    PlanApply,
    StateStore,
)
from yurt.structs import Evaluation, evolve
from yurt.testing.mock import mock_job, mock_node

from .test_equivalence import _digest, _Recorder


class _Unversioned:
    """The same snapshot without the per-node index: every node's allocs are read."""

    def __init__(self, snap) -> None:
        self._snap = snap

    def __getattr__(self, name):
        if name == "node_allocs_index":
            raise AttributeError(name)
        return getattr(self._snap, name)


def _schedule(snap, job, eval_id: str):
    planner = _Recorder()
    ev = Evaluation(id=eval_id, namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    new_scheduler(job.type, snap, planner, now_ns=1_000_000_000).process(ev)
    return planner


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def test_usage_index_moves_only_when_usage_can_change():
    store = StateStore.open(None)
    node = mock_node()
    job = mock_job(id="web")
    store.apply_batch([NodeRegister(node=node), JobRegister(job=job)])
    job = store.snapshot().job_by_id(job.namespace, job.id)
    planner = _schedule(store.snapshot(), job, str(uuid.uuid4()))
    plan = planner.plans[0]
    store.apply(PlanApply(eval_id=plan.eval_id, job=job, node_allocation=plan.node_allocation))
    snap = store.snapshot()
    placed = snap.allocs_by_node(node.id)
    assert placed
    before = snap.node_allocs_index(node.id)
    assert before > 0
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=placed[0].id, client_status="running")]))
    assert store.snapshot().node_allocs_index(node.id) == before  # a status report holds the same
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=placed[0].id, client_status="complete")]))
    assert store.snapshot().node_allocs_index(node.id) > before  # terminal: its resources are free


def test_plans_with_the_usage_cache_equal_plans_reading_every_node():
    rng = Random(11)
    store = StateStore.open(None)
    nodes = [mock_node(id=_uuid(rng)) for _ in range(25)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    job = mock_job(id="web")
    for step in range(8):
        tg = job.task_groups[0]
        job = evolve(job, task_groups=[evolve(tg, count=tg.count + rng.randint(3, 12))])
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        eval_id = _uuid(rng)
        snap = store.snapshot()
        cached = _schedule(snap, job, eval_id)  # with the cache the earlier steps filled
        saved = dict(usage_mod._BASE_CACHE)
        usage_mod._BASE_CACHE.clear()
        full = _schedule(_Unversioned(snap), job, eval_id)
        usage_mod._BASE_CACHE.clear()
        usage_mod._BASE_CACHE.update(saved)
        assert _digest(cached) == _digest(full), step
        plan = cached.plans[0]
        store.apply(PlanApply(eval_id=plan.eval_id, job=job, node_allocation=plan.node_allocation))
        allocs = store.snapshot().allocs_by_job(job.namespace, job.id)
        updates = [AllocUpdate(id=a.id, client_status=rng.choice(("running", "running", "complete", "failed")))
                   for a in allocs if not a.terminal and rng.random() < 0.5]
        store.apply(AllocClientUpdate(allocs=updates))


def _content(base) -> tuple:
    return (base.free_cpu, base.free_mem, base.free_disk, base.free_cores, base.ports, base.jobs, base.conflict)


def test_usage_carried_over_by_the_plan_applier_equals_a_recount():
    rng = Random(5)
    store = StateStore.open(None)
    nodes = [mock_node(id=_uuid(rng)) for _ in range(12)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    applier = PlanApplier(store, now_ns=lambda: 1_000_000_000)
    job = mock_job(id="web")
    carried = 0
    for step in range(10):
        tg = job.task_groups[0]
        count = max(1, tg.count + rng.randint(-6, 10))  # scale-downs stop allocs
        job = evolve(job, task_groups=[evolve(tg, count=count)])
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        snap = store.snapshot()
        planner = _Recorder()
        ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                        triggered_by="job-register", job_id=job.id, status="pending")
        new_scheduler(job.type, snap, planner, now_ns=1_000_000_000).process(ev)
        for plan in planner.plans:
            applier.apply(plan)
        after = store.snapshot()
        for node in nodes:
            node = after.node_by_id(node.id)
            base = usage_mod.cached_base(node, after.node_allocs_index(node.id))
            if base is None or base.fingerprint[2] != -1:
                continue  # not carried over by the applier
            carried += 1
            fresh = usage_mod.NodeBase(node, after.allocs_by_node(node.id), ())
            assert _content(base) == _content(fresh), (step, node.id)
        allocs = store.snapshot().allocs_by_job(job.namespace, job.id)
        updates = [AllocUpdate(id=a.id, client_status=rng.choice(("running", "running", "failed")))
                   for a in allocs if not a.terminal and rng.random() < 0.4]
        store.apply(AllocClientUpdate(allocs=updates))
    assert carried > 10
