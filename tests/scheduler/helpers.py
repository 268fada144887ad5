"""Shared helpers for scheduler scenario tests."""

from yurt.structs import Constraint, Job, Resources, evolve
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_job, mock_node


def placed(h: Harness, plan_index: int = -1):
    plan = h.plans[plan_index]
    return [a for allocs in plan.node_allocation.values() for a in allocs]


def stopped(h: Harness, plan_index: int = -1):
    plan = h.plans[plan_index]
    return [a for allocs in plan.node_update.values() for a in allocs]


def with_count(job: Job, count: int) -> Job:
    tg = job.task_groups[0]
    return evolve(job, task_groups=[evolve(tg, count=count)])


def with_resources(job: Job, cpu: int = 500, memory_mb: int = 256) -> Job:
    tg = job.task_groups[0]
    task = tg.tasks[0]
    task = evolve(task, resources=evolve(task.resources or Resources(), cpu=cpu, memory_mb=memory_mb))
    return evolve(job, task_groups=[evolve(tg, tasks=[task])])


def with_group_constraints(job: Job, *constraints: Constraint) -> Job:
    tg = job.task_groups[0]
    return evolve(job, task_groups=[evolve(tg, constraints=list(constraints))])


def cluster(n: int, **node_fields) -> Harness:
    h = Harness()
    for _ in range(n):
        h.add_node(mock_node(**node_fields))
    return h


def run_job(h: Harness, job: Job):
    ev = h.register_job(job)
    h.process(ev)
    return h.state.job_by_id(job.namespace, job.id), ev


def small_job(count: int = 1, **fields) -> Job:
    return with_count(mock_job(**fields), count)


def plans_three_ways(run, seed: int, monkeypatch) -> tuple:
    """`run(seed)`'s plans as the scheduler makes them now (the plain walk, however the
    caller patched it), then with the plain walk declining every placement (the general
    path), then with class windows off (the node-by-node walk)."""
    import itertools
    import os

    from yurt.scheduler import placement as placement_mod
    from yurt.scheduler import select as select_mod

    from yurt.structs import ids as ids_mod

    def run_from_block_0():  # the alloc IDs' locality hints (a process-wide count) as the first run's
        monkeypatch.setattr(ids_mod, "_blocks", itertools.count())
        return run(seed)

    monkeypatch.setattr(placement_mod, "os", os)  # put back after the test (`run` replaces it)
    plain = run_from_block_0()
    monkeypatch.setattr(placement_mod.PlanBuilder, "_place_plain", lambda self, req: False)
    general = run_from_block_0()
    monkeypatch.setattr(select_mod, "window_applies", lambda placer: False)
    return plain, general, run_from_block_0()
