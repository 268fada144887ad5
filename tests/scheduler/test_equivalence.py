"""Scheduler performance work must not change a single decision.

Seeded random clusters (capacities, datacenters, classes, existing allocs with ports)
and jobs (counts, spreads with and without targets, affinities, distinct_hosts, static
ports, cores, batch, the spread algorithm, scale-ups over existing allocs) are scheduled
and the plan is reduced to a digest of every decision: which node each alloc name went
to, its ports and cores, and the metrics (nodes evaluated / filtered / exhausted, top
scores) the plan carries. The expected digests in `test_equivalence_golden.py` were
recorded with the scheduler as it was before the performance changes; regenerate them
only for an intended change of behaviour:

    PYTHONPATH=src python tests/scheduler/test_equivalence.py > tests/scheduler/test_equivalence_golden.py
"""

from __future__ import annotations

import hashlib
import json
import uuid
from random import Random

import pytest

from yurt.scheduler import new_scheduler
from yurt.structs import (
    Affinity,
    Constraint,
    Evaluation,
    PlanResult,
    Port,
    Resources,
    SchedulerConfiguration,
    Spread,
    SpreadTarget,
    evolve,
)
from yurt.structs.node import NodeCpuResources, NodeMemoryResources
from yurt.testing.harness import InMemoryState
from yurt.testing.mock import mock_alloc, mock_job, mock_node

SCENARIOS = 40
LARGE = 14  # scenarios SCENARIOS.. : a few hundred mostly alike nodes, where windows are walked in bulk


class _Recorder:
    def __init__(self) -> None:
        self.plans = []
        self.evals = []

    def submit_plan(self, plan):
        self.plans.append(plan)
        return PlanResult(node_allocation=plan.node_allocation, node_update=plan.node_update), None

    def update_eval(self, ev):
        self.evals.append(ev)

    def create_eval(self, ev):
        self.evals.append(ev)

    def reblock_eval(self, ev):
        self.evals.append(ev)


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _node(rng: Random, i: int, alike: bool = False):
    node = mock_node(id=_uuid(rng), datacenter=rng.choice(("dc1", "dc1", "dc2", "dc3")),
                     node_class=rng.choice(("small", "large", "")))
    res = node.node_resources
    cpu = 4000 if alike else rng.choice((2000, 4000, 8000))
    mem = 8192 if alike else rng.choice((4096, 8192, 16384))
    node = evolve(node, node_resources=evolve(
        res, cpu=NodeCpuResources(cpu_shares=cpu, total_cpu_cores=4, reservable_cpu_cores=[0, 1, 2, 3]),
        memory=NodeMemoryResources(memory_mb=mem)),
        meta={**node.meta, "rack": f"r{i % 4}"})
    if rng.random() < (0.02 if alike else 0.1):
        node = evolve(node, attributes={**node.attributes, "kernel.name": "windows"})
    return node


def _job(rng: Random, job_id: str, count: int):
    job = mock_job(id=job_id)
    tg = job.task_groups[0]
    task = tg.tasks[0]
    task = evolve(task, resources=Resources(cpu=rng.choice((100, 250, 500, 1200)),
                                            memory_mb=rng.choice((64, 256, 1024)),
                                            cores=1 if rng.random() < 0.08 else 0))
    tg = evolve(tg, count=count, tasks=[task])
    if tg.tasks[0].resources.cores:
        tg = evolve(tg, tasks=[evolve(task, resources=evolve(task.resources, cpu=0))])
    if rng.random() < 0.2:
        tg = evolve(tg, networks=[evolve(tg.networks[0], reserved_ports=[Port(label="admin", value=8080)])])
    elif rng.random() < 0.2:
        tg = evolve(tg, networks=None)
    job = evolve(job, datacenters=["dc*"] if rng.random() < 0.8 else ["dc1", "dc2"], task_groups=[tg])
    r = rng.random()
    if r < 0.25:
        job = evolve(job, spreads=[Spread(attribute="${node.datacenter}", weight=rng.choice((50, 100)))])
    elif r < 0.4:
        job = evolve(job, spreads=[Spread(attribute="${node.datacenter}", weight=100, spread_target=[
            SpreadTarget(value="dc1", percent=60), SpreadTarget(value="dc2", percent=30)])])
    elif r < 0.5:
        job = evolve(job, affinities=[Affinity(l_target="${node.class}", r_target="large", operand="=",
                                               weight=rng.choice((50, -50)))])
    if rng.random() < 0.1:
        job = evolve(job, constraints=[*job.constraints, Constraint(operand="distinct_hosts", r_target="true")])
    elif rng.random() < 0.08:
        job = evolve(job, constraints=[*job.constraints,
                                       Constraint(operand="distinct_property", l_target="${meta.rack}",
                                                  r_target=str(rng.randint(2, 9)))])
    if rng.random() < 0.15:
        job = evolve(job, type="batch")
    return job


def scenario(seed: int) -> str:
    """The digest of the plan made for one random scenario."""
    rng = Random(seed)
    state = InMemoryState()
    large = seed >= SCENARIOS
    n_nodes = rng.randint(250, 400) if large else rng.randint(5, 120)
    nodes = [state.upsert_node(_node(rng, i, large)) for i in range(n_nodes)]
    filler = evolve(_job(rng, "filler", 1), spreads=None, affinities=None, constraints=None)
    for node in nodes:
        for i in range(rng.choice((0, 0, 0, 0, 0, 1, 3)) if large else rng.choice((0, 0, 1, 3, 8))):
            alloc = mock_alloc(filler, node, index=i, id=_uuid(rng), eval_id=_uuid(rng))
            if rng.random() < 0.1:
                alloc = evolve(alloc, client_status="complete")
            state.upsert_alloc(alloc, 1)
    job = state.upsert_job(_job(rng, "j", rng.choice((20, 60, 140)) if large else rng.choice((1, 3, 10, 40, 150))))
    if rng.random() < 0.3:  # some of the job already runs: a scale-up
        for i in range(min(job.task_groups[0].count, 5)):
            node = rng.choice(nodes)
            state.upsert_alloc(mock_alloc(job, node, index=i, id=_uuid(rng), eval_id=_uuid(rng)), 1)
        tg = job.task_groups[0]
        job = state.upsert_job(evolve(job, task_groups=[evolve(tg, count=tg.count + rng.randint(1, 30))]))
    algorithm = rng.choice(("binpack", "binpack", "spread"))
    ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    planner = _Recorder()
    sched = new_scheduler(job.type, state.snapshot(), planner, now_ns=1_000_000_000,
                          config=SchedulerConfiguration(scheduler_algorithm=algorithm))
    sched.process(ev)
    return _digest(planner)


def _metric(m) -> list:
    if m is None:
        return []
    top = [(s.node_id, repr(s.norm_score), sorted((k, repr(v)) for k, v in s.scores.items()))
           for s in m.score_meta_data or ()]
    return [m.nodes_evaluated, m.nodes_filtered, m.nodes_exhausted, m.nodes_in_pool,
            sorted((m.constraint_filtered or {}).items()), sorted((m.dimension_exhausted or {}).items()),
            sorted((m.class_filtered or {}).items()), sorted((m.class_exhausted or {}).items()),
            m.failure_reasons, m.coalesced_failures, top]


def _digest(planner: _Recorder) -> str:
    out = []
    for plan in planner.plans:
        placed = []
        for node_id, allocs in sorted(plan.node_allocation.items()):
            for a in allocs:
                ar = a.allocated_resources
                nets = [(n.ip, [(p.label, p.value) for p in n.reserved_ports or ()],
                         [(p.label, p.value, p.to) for p in n.dynamic_ports or ()])
                        for n in (ar.shared.networks or ())]
                tasks = sorted((k, t.cpu.cpu_shares, t.memory.memory_mb, t.memory.memory_max_mb,
                                list(t.cpu.reserved_cores or ())) for k, t in ar.tasks.items())
                placed.append((a.name, node_id, nets, tasks, ar.shared.disk_mb, _metric(a.metrics)))
        placed.sort()
        stops = sorted((n, a.id, a.desired_description) for n, allocs in plan.node_update.items() for a in allocs)
        out.append([placed, stops])
    for ev in planner.evals:
        failed = sorted((k, _metric(v)) for k, v in (ev.failed_tg_allocs or {}).items())
        out.append([ev.status, ev.triggered_by, failed, sorted((ev.queued_allocations or {}).items())])
    return hashlib.sha256(json.dumps(out, default=str).encode()).hexdigest()


def _golden() -> dict[int, str]:
    from .test_equivalence_golden import GOLDEN

    return GOLDEN


@pytest.mark.parametrize("seed", range(SCENARIOS + LARGE))
def test_plan_identical_to_recorded(seed):
    assert scenario(seed) == _golden()[seed]


def test_scenarios_place_something():
    # the digests above are only worth as much as the scenarios are varied
    assert len(set(_golden().values())) == SCENARIOS + LARGE


if __name__ == "__main__":
    print('"""Plan digests of tests/scheduler/test_equivalence.py, recorded before the performance work."""\n')
    print("GOLDEN = {")
    for s in range(SCENARIOS + LARGE):
        print(f"    {s}: {scenario(s)!r},")
    print("}")
