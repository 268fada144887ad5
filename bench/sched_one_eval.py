"""One evaluation of a count=1,000 service job on 5,000 mock nodes.

Prints one JSON line: median wall and CPU time of `process(eval)` over a few runs
(the plan is recorded, not applied), the first (cold cache) run, placements, and
nodes scored per placement next to Nomad's limit for that job (max(2, ceil(log2 n)) for
a service job, max(count, 100) with a spread or affinity). `--allocs-per-node 200` adds
1,000,000 existing allocs; `--spread` spreads the nodes over 5 datacenters and gives the
job a `spread { attribute = "${node.datacenter}" }` block.

    .venv/bin/python bench/sched_one_eval.py [--nodes 5000] [--count 1000] [--runs 5] [--spread]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from yurt.scheduler import new_scheduler
from yurt.scheduler.select import AFFINITY_SPREAD_LIMIT, service_limit
from yurt.structs import (
    Evaluation,
    PlanResult,
    Resources,
    Spread,
    evolve,
    generate_uuid,
)
from yurt.testing.harness import InMemoryState
from yurt.testing.mock import mock_alloc, mock_job, mock_node


class RecordingPlanner:
    """Accepts every plan as committed; records nothing else."""

    def __init__(self) -> None:
        self.plan = None
        self.evals = []

    def submit_plan(self, plan):
        self.plan = plan
        return PlanResult(node_allocation=plan.node_allocation, node_update=plan.node_update), None

    def update_eval(self, ev):
        self.evals.append(ev)

    def create_eval(self, ev):
        self.evals.append(ev)

    def reblock_eval(self, ev):
        self.evals.append(ev)


DATACENTERS = ("dc1", "dc2", "dc3", "dc4", "dc5")


def build_state(nodes: int, count: int, allocs_per_node: int = 0, spread: bool = False) -> tuple[InMemoryState, object]:
    state = InMemoryState()
    filler = evolve(mock_job(id="filler"), task_groups=[evolve(mock_job().task_groups[0], networks=None)])
    filler = evolve(filler, task_groups=[evolve(filler.task_groups[0], tasks=[
        evolve(filler.task_groups[0].tasks[0], resources=Resources(cpu=10, memory_mb=10))])])
    template = None
    for n in range(nodes):
        node = state.upsert_node(mock_node(datacenter=DATACENTERS[n % len(DATACENTERS)] if spread else "dc1"))
        for i in range(allocs_per_node):
            if template is None:
                template = mock_alloc(filler, node)
            # cheap copies of one template: only identity and placement differ
            state.upsert_alloc(evolve(template, id=generate_uuid(), node_id=node.id, name=f"filler.web[{i}]"), 1)
    job = mock_job(id="bench")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=count)])
    if spread:
        job = evolve(job, datacenters=list(DATACENTERS), spreads=[Spread(attribute="${node.datacenter}", weight=100)])
    return state, state.upsert_job(job)


def nomad_limit(nodes: int, count: int, spread: bool) -> int:
    """Nodes Nomad's limit iterator scores per placement for this job."""
    return max(count, AFFINITY_SPREAD_LIMIT) if spread else service_limit(nodes)


def run_once(snapshot, job) -> tuple[float, int, int]:
    planner = RecordingPlanner()
    ev = Evaluation(id=generate_uuid(), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    start, cpu_start = time.perf_counter(), time.process_time()
    sched = new_scheduler("service", snapshot, planner, now_ns=time.time_ns())
    sched.process(ev)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    placed = sum(len(v) for v in planner.plan.node_allocation.values())
    return elapsed, cpu, placed, sched.nodes_scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--allocs-per-node", type=int, default=0, help="existing allocs of another job per node")
    parser.add_argument("--spread", action="store_true", help="5 datacenters and a spread block over them")
    args = parser.parse_args()
    state, job = build_state(args.nodes, args.count, args.allocs_per_node, args.spread)
    snapshot = state.snapshot()
    times, cpu_times, placed, scored = [], [], 0, 0
    for _ in range(args.runs):
        elapsed, cpu, placed, scored = run_once(snapshot, job)
        times.append(elapsed)
        cpu_times.append(cpu)
    print(json.dumps({
        "bench": "sched_one_eval_spread" if args.spread else "sched_one_eval",
        "nodes": args.nodes,
        "count": args.count,
        "existing_allocs": args.nodes * args.allocs_per_node,
        "runs": args.runs,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "median_cpu_ms": round(statistics.median(cpu_times) * 1000, 1),  # steadier on a busy machine
        "first_run_ms": round(times[0] * 1000, 1),  # cold: node usage cache empty
        "placements": placed,
        "nodes_scored_per_placement": round(scored / placed, 2) if placed else 0,
        "nomad_limit": nomad_limit(args.nodes, args.count, args.spread),
        "placements_per_second": round(placed / statistics.median(times)) if placed else 0,
    }))


if __name__ == "__main__":
    main()
