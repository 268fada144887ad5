"""On the real state store, evaluations reuse per-node work across evaluations
(`scheduler/nodetable.py`: the sorted ready nodes per node-table version and each node's
usage key, re-read only when its usage index moved). A sequence of varied jobs (the
equivalence scenarios' generators: filters, classes, ports, spreads, affinities,
distinct_hosts, cores, batch), each plan committed, with node writes in between, must be
scheduled exactly as without that reuse (every node read again)."""

from __future__ import annotations

from random import Random

import pytest

from yurt.scheduler import new_scheduler
from yurt.scheduler import nodetable
from yurt.scheduler import usage as usage_mod
from yurt.scheduler.node_class import computed_class
from yurt.state import JobRegister, NodeRegister, NodeUpdateDrain, NodeUpdateStatus, PlanApply, StateStore
from yurt.structs import Evaluation, SchedulerConfiguration, evolve
from yurt.structs.node import DrainStrategy

from .test_equivalence import _digest, _job, _node, _Recorder, _uuid
from .test_equivalence_store import _Unversioned


def _schedule(snap, job, eval_id: str, algorithm: str) -> _Recorder:
    planner = _Recorder()
    ev = Evaluation(id=eval_id, namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    new_scheduler(job.type, snap, planner, now_ns=1_000_000_000,
                  config=SchedulerConfiguration(scheduler_algorithm=algorithm)).process(ev)
    return planner


@pytest.mark.parametrize("seed", range(6))
def test_sequence_with_reused_node_work_equals_reading_every_node(seed):
    rng = Random(seed)
    store = StateStore.open(None)
    alike = seed % 2 == 1  # many equal nodes: bulk window walks
    nodes = [_node(rng, i, alike) for i in range(rng.randint(40, 160))]
    store.apply_batch([NodeRegister(node=evolve(n, computed_class=computed_class(n))) for n in nodes])
    reused = 0
    for step in range(10):
        if step in (4, 7):  # node writes: a new node table
            node = rng.choice(nodes)
            if step == 4:
                store.apply(NodeUpdateStatus(node_id=node.id, status="down", updated_at=1))
            else:
                store.apply(NodeUpdateDrain(node_id=node.id, drain_strategy=DrainStrategy(deadline=10**9),
                                            updated_at=1))
        job = evolve(_job(rng, f"j{step % 7}", rng.choice((5, 20, 60, 150, 400))), type="service")
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        snap = store.snapshot()
        eval_id, algorithm = _uuid(rng), rng.choice(("binpack", "binpack", "spread"))
        before = nodetable._TABLE
        cached = _schedule(snap, job, eval_id, algorithm)
        reused += before is not None and nodetable._TABLE is before
        saved = dict(usage_mod._BASE_CACHE)
        usage_mod._BASE_CACHE.clear()
        full = _schedule(_Unversioned(snap), job, eval_id, algorithm)
        usage_mod._BASE_CACHE.clear()
        usage_mod._BASE_CACHE.update(saved)
        assert _digest(cached) == _digest(full), step
        for plan in cached.plans:
            store.apply(PlanApply(eval_id=plan.eval_id, job=job, node_allocation=plan.node_allocation,
                                  node_update=plan.node_update))
    assert reused >= 5  # the node table was kept across most evaluations
