"""sc6 (issue 7): the per-eval set-up of the class window.

- `nodetable.shuffle` walks its steps in runs of one draw bit length: the permutation and
  the generator's state after it must be exactly `Random.shuffle`'s, for every size
  (the bit length of the bound changes at powers of two).
- `ClassWindow._keyed_classes` finds the positions of the nodes that hold the job's allocs
  (a retry after a partial commit) without the position map, and reads the job's allocs
  from the list the scheduler already made: the plan must be the one of the general path.
"""

from __future__ import annotations

import types
from random import Random

import pytest

from yurt.scheduler import new_scheduler, nodetable, window_setup
from yurt.scheduler import placement as placement_mod
from yurt.scheduler import usage as usage_mod
from yurt.scheduler.node_class import computed_class
from yurt.scheduler.nodetable import shuffle
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import Evaluation, PlanResult, SchedulerConfiguration, evolve

from .helpers import plans_three_ways
from .test_equivalence import _digest, _node, _uuid
from .test_sc3_plain_path import _fill, _tiny

SIZES = list(range(0, 70)) + [127, 128, 129, 255, 256, 257, 4095, 4096, 4097, 5000]


@pytest.mark.parametrize("n", SIZES)
def test_shuffle_is_random_shuffle(n):
    for seed in range(25 if n < 300 else 4):
        expected, got = Random(seed * 7919 + n), Random(seed * 7919 + n)
        xs, ys = list(range(n)), list(range(n))
        expected.shuffle(xs)
        shuffle(ys, got)
        assert ys == xs
        assert got.getstate() == expected.getstate()  # the next draws are the same too


def test_shuffle_of_a_random_subclass_calls_its_shuffle():
    class Mine(Random):
        def shuffle(self, x):
            x.reverse()

    xs = [1, 2, 3]
    shuffle(xs, Mine(1))
    assert xs == [3, 2, 1]


class _HalfPlanner:
    """Commits the first half of the eval's first plan only (a partial commit): the eval
    retries on the newer snapshot, where the job holds allocs on those nodes."""

    def __init__(self, store) -> None:
        self.store = store
        self.plans: list = []
        self.evals: list = []

    def submit_plan(self, plan):
        self.plans.append(plan)
        allocs = plan.node_allocation
        if len(self.plans) == 1 and len(allocs) > 1:
            allocs = dict(list(allocs.items())[: len(allocs) // 2])
        if allocs or plan.node_update:
            self.store.apply(PlanApply(eval_id=plan.eval_id, job=plan.job, node_allocation=allocs,
                                       node_update=plan.node_update, updated_at=1))
        if allocs is plan.node_allocation:
            return PlanResult(node_allocation=allocs, node_update=plan.node_update), None
        snap = self.store.snapshot()
        return PlanResult(node_allocation=allocs, node_update=plan.node_update, refresh_index=snap.index), snap

    def update_eval(self, ev):
        self.evals.append(ev)

    create_eval = reblock_eval = update_eval


_RETRIED = {"own": 0}


def _retrying_run(seed: int) -> list[str]:
    placement_mod.os = types.SimpleNamespace(urandom=Random(seed + 1000).randbytes)
    nodetable._TABLE = None
    usage_mod._BASE_CACHE.clear()
    rng = Random(seed)
    store = StateStore.open(None)
    nodes = [_node(rng, i, seed % 2 == 0) for i in range(rng.randint(30, 120))]
    store.apply_batch([NodeRegister(node=evolve(n, computed_class=computed_class(n))) for n in nodes])
    _fill(store, nodes, rng)
    algorithm = rng.choice(("binpack", "spread"))
    digests = []
    for step in range(4):
        job = _tiny(rng, f"j{step}")
        store.apply(JobRegister(job=job))
        job = store.snapshot().job_by_id(job.namespace, job.id)
        planner = _HalfPlanner(store)
        ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                        triggered_by="job-register", job_id=job.id, status="pending")
        new_scheduler(job.type, store.snapshot(), planner, now_ns=1_000_000_000,
                      config=SchedulerConfiguration(scheduler_algorithm=algorithm)).process(ev)
        digests.append(_digest(planner))
    return digests


@pytest.mark.parametrize("seed", range(6))
def test_retry_after_a_partial_commit_places_as_the_general_path_and_the_node_walk(seed, monkeypatch):
    real = window_setup.keyed_classes

    def counted(win):
        if win.tracker.job_allocs:
            _RETRIED["own"] += 1
        return real(win)

    monkeypatch.setattr(window_setup, "keyed_classes", counted)
    plain, general, stepped = plans_three_ways(_retrying_run, seed, monkeypatch)
    assert plain == general
    assert plain == stepped


def test_retries_set_up_windows_with_the_jobs_own_allocs():
    if not _RETRIED["own"]:
        pytest.skip("run together with test_retry_after_a_partial_commit_places_as_the_general_path...")
    assert _RETRIED["own"] >= 6
