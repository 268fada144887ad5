"""Short windows (limit < window.BULK_LIMIT, e.g. 13 on 5,000 nodes) walked in bulk by
`ClassWindow._plain_window` must decide exactly as the node-by-node walk of
`select.NodeSelector`: the same nodes, scores, counters and score entries, plan by plan.
Clusters of varied and alike nodes, partly filled (scores <= 0 under the spread
algorithm on full nodes, exhausted and filtered nodes in the windows), windows wrapping
around the end of the candidate list, several evaluations in a row on the state store."""

from __future__ import annotations

from random import Random

import pytest

from yurt.scheduler import new_scheduler, nodetable
from yurt.scheduler import select as select_mod
from yurt.scheduler import usage as usage_mod
from yurt.scheduler.node_class import computed_class
from yurt.scheduler.window import ClassWindow
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import Evaluation, SchedulerConfiguration, evolve
from yurt.testing.mock import mock_alloc

from .test_equivalence import _digest, _job, _node, _Recorder, _uuid


def _run(seed: int) -> list[str]:
    rng = Random(seed)
    store = StateStore.open(None)
    alike = seed % 3 == 0
    nodes = [_node(rng, i, alike) for i in range(rng.randint(20, 90))]
    store.apply_batch([NodeRegister(node=evolve(n, computed_class=computed_class(n))) for n in nodes])
    filler = evolve(_job(rng, "filler", 1), spreads=None, affinities=None, constraints=None, type="service")
    store.apply(JobRegister(job=filler))
    filler = store.snapshot().job_by_id(filler.namespace, filler.id)
    allocs: dict[str, list] = {}
    for node in nodes:
        for i in range(rng.choice((0, 0, 1, 2, 6))):
            allocs.setdefault(node.id, []).append(
                evolve(mock_alloc(filler, node, index=i, id=_uuid(rng), eval_id="fill"), job=None))
    if allocs:
        store.apply(PlanApply(eval_id="fill", job=filler, node_allocation=allocs, updated_at=1))
    digests = []
    for step in range(4):
        job = evolve(_job(rng, f"j{step}", rng.choice((3, 10, 40, 120))), spreads=None, affinities=None,
                     type="service")
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        planner = _Recorder()
        ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                        triggered_by="job-register", job_id=job.id, status="pending")
        algorithm = rng.choice(("binpack", "spread"))
        new_scheduler(job.type, store.snapshot(), planner, now_ns=1_000_000_000,
                      config=SchedulerConfiguration(scheduler_algorithm=algorithm)).process(ev)
        digests.append(_digest(planner))
        for plan in planner.plans:  # committed as planned: the next job sees a fuller cluster
            if plan.node_allocation:
                store.apply(PlanApply(eval_id=ev.id, job=job, node_allocation=plan.node_allocation, updated_at=1))
    return digests


@pytest.mark.parametrize("seed", range(12))
def test_short_window_bulk_walk_equals_node_by_node(seed, monkeypatch):
    calls = {"bulk": 0, "declined": 0}
    real = ClassWindow._plain_window

    def counted(self, *args):
        option = real(self, *args)
        calls["bulk" if option is not None else "declined"] += 1
        return option

    monkeypatch.setattr(ClassWindow, "_plain_window", counted)
    nodetable._TABLE = None
    usage_mod._BASE_CACHE.clear()
    walked = _run(seed)
    monkeypatch.setattr(select_mod, "window_applies", lambda placer: False)  # the node-by-node walk
    nodetable._TABLE = None
    usage_mod._BASE_CACHE.clear()
    stepped = _run(seed)
    assert walked == stepped
    _SEEN["bulk"] += calls["bulk"]
    _SEEN["declined"] += calls["declined"]


_SEEN = {"bulk": 0, "declined": 0}


def test_both_paths_were_exercised():
    # runs after the parametrized cases (file order): the seeds above must take the bulk
    # path many times and decline it sometimes (a score <= 0, an unscored kind in the window)
    if _SEEN["bulk"] == 0 and _SEEN["declined"] == 0:
        pytest.skip("run together with test_short_window_bulk_walk_equals_node_by_node")
    assert _SEEN["bulk"] > 100
    assert _SEEN["declined"] > 0
