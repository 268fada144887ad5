"""`PlanBuilder._place_plain` (a new placement of a group without networks whose node the
class window's plain short walk picks: W1's placements) must place exactly what the
general path (`place_one` -> `NodeSelector.select` -> `_new_alloc`) and the node-by-node
walk place: the same nodes, names, resources, metrics and score entries, plan by plan.

Sequences of evaluations on the state store: clusters of varied and alike nodes, partly
filled, some nodes filling up (exhausted and score <= 0 windows), jobs with and without
networks, deployments (their placements take the general path), binpack and spread, and
then nodes going down (replacements with a previous alloc: the general path), each plan
committed before the next evaluation."""

from __future__ import annotations

import types
from random import Random

import pytest

from yurt.scheduler import new_scheduler, nodetable
from yurt.scheduler import placement as placement_mod
from yurt.scheduler import usage as usage_mod
from yurt.scheduler.node_class import computed_class
from yurt.state import JobRegister, NodeRegister, NodeUpdateStatus, PlanApply, StateStore
from yurt.structs import Evaluation, Resources, SchedulerConfiguration, UpdateStrategy, evolve
from yurt.testing.mock import mock_alloc, mock_job

from .helpers import plans_three_ways
from .test_equivalence import _digest, _node, _Recorder, _uuid


def _tiny(rng: Random, job_id: str) -> object:
    job = mock_job(id=job_id)
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], resources=Resources(cpu=rng.choice((20, 100, 500, 1500)),
                                                   memory_mb=rng.choice((10, 64, 1024))))
    update = UpdateStrategy(max_parallel=0) if rng.random() < 0.8 else tg.update  # else a deployment
    tg = evolve(tg, count=rng.choice((5, 30, 120, 300)), tasks=[task], update=update,
                networks=tg.networks if rng.random() < 0.15 else None)
    return evolve(job, datacenters=["dc*"], task_groups=[tg], constraints=None if rng.random() < 0.7
                  else job.constraints)


def _eval(store, job, rng: Random, algorithm: str, trigger: str = "job-register") -> str:
    planner = _Recorder()
    ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by=trigger, job_id=job.id, status="pending")
    new_scheduler(job.type, store.snapshot(), planner, now_ns=1_000_000_000,
                  config=SchedulerConfiguration(scheduler_algorithm=algorithm)).process(ev)
    for plan in planner.plans:  # committed as planned: the next evaluation sees a fuller cluster
        if plan.node_allocation or plan.node_update:
            store.apply(PlanApply(eval_id=ev.id, job=store.snapshot().job_by_id(job.namespace, job.id),
                                  node_allocation=plan.node_allocation, node_update=plan.node_update,
                                  updated_at=1))
    return _digest(planner)


def _fill(store, nodes: list, rng: Random) -> None:
    """0-8 allocs of a filler job on each node (some nodes fill up under the bigger jobs)."""
    filler = _tiny(rng, "filler")
    store.apply(JobRegister(job=filler))
    filler = store.snapshot().job_by_id(filler.namespace, filler.id)
    counts = {node.id: rng.choice((0, 0, 1, 3, 8)) for node in nodes}
    allocs = {node.id: [evolve(mock_alloc(filler, node, index=i, id=_uuid(rng), eval_id="fill"), job=None)
                        for i in range(counts[node.id])] for node in nodes if counts[node.id]}
    if allocs:
        store.apply(PlanApply(eval_id="fill", job=filler, node_allocation=allocs, updated_at=1))


def _run(seed: int) -> list[str]:
    # alloc IDs drawn from a seeded generator: stops are ordered by alloc ID
    placement_mod.os = types.SimpleNamespace(urandom=Random(seed + 1000).randbytes)
    nodetable._TABLE = None
    usage_mod._BASE_CACHE.clear()
    rng = Random(seed)
    store = StateStore.open(None)
    alike = seed % 2 == 0
    nodes = [_node(rng, i, alike) for i in range(rng.randint(15, 120))]
    store.apply_batch([NodeRegister(node=evolve(n, computed_class=computed_class(n))) for n in nodes])
    _fill(store, nodes, rng)
    algorithm = rng.choice(("binpack", "binpack", "spread"))
    digests, jobs = [], []
    for step in range(5):
        job = _tiny(rng, f"j{step}")
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        jobs.append(job)
        digests.append(_eval(store, job, rng, algorithm))
    lost = rng.sample(nodes, max(1, len(nodes) // 8))
    store.apply_batch([NodeUpdateStatus(node_id=n.id, status="down", updated_at=2) for n in lost])
    for job in jobs:  # replacements of the lost allocs: placements with a previous alloc
        digests.append(_eval(store, job, rng, algorithm, "node-update"))
    return digests


_SEEN = {"plain": 0, "general": 0}


@pytest.mark.parametrize("seed", range(10))
def test_plain_path_places_as_the_general_path_and_the_node_walk(seed, monkeypatch):
    real = placement_mod.PlanBuilder._place_plain

    def counted(self, req):
        done = real(self, req)
        _SEEN["plain" if done else "general"] += 1
        return done

    monkeypatch.setattr(placement_mod.PlanBuilder, "_place_plain", counted)
    plain, general, stepped = plans_three_ways(_run, seed, monkeypatch)
    assert plain == general
    assert plain == stepped


def test_both_paths_were_taken():
    # runs after the parametrized cases (file order): the plain path must place most new
    # allocs, and decline some (a window it cannot decide, networks, deployments, replacements)
    if not _SEEN["plain"] and not _SEEN["general"]:
        pytest.skip("run together with test_plain_path_places_as_the_general_path_and_the_node_walk")
    assert _SEEN["plain"] > 400
    assert _SEEN["general"] > 100
