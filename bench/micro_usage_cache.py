"""The scheduler's per-node usage cache under a W1-like write sequence, in one process.

`--jobs` tiny service jobs of `--count` on `--nodes` sim-sized nodes (the bench's sizes, as
`sched_one_eval.py --sequence`), on the real state store, with what a W1 server has around
its evaluations:

- two evaluations in flight (`--inflight 2`, the server's two scheduler workers): eval j
  runs on a snapshot taken before the plan of eval j-1 was committed, so it is one commit
  (and the client updates in between) behind;
- each plan through the real `PlanApplier.apply`;
- the nodes' status reports of each plan's allocs (`running`; `--terminal-share` of them
  `complete` instead) through `AllocUpdateBatcher.flush`, `--flush` updates a command,
  interleaved with the commits (they arrive one plan later).

Prints one JSON line: CPU seconds of the scheduler, the plan applier and the flushes, and
`usage.STATS`: NodeBase recounts (`recount`, and `recount:<why>`: no_base, cache_behind
(a write was not carried over), snapshot_behind (the eval's snapshot is older than the
cached base), node_changed, unversioned) per phase, and what the writers carried over.

    PYTHONPATH=src .venv/bin/python bench/micro_usage_cache.py --nodes 5000 --jobs 40 --count 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from random import Random

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NOW = 1_700_000_000 * 10**9


class _Server:
    def __init__(self, state) -> None:
        self.state = state


def _phase(stats: dict, name: str, before: dict, after: dict) -> None:
    for key, value in after.items():
        delta = value - before.get(key, 0)
        if delta:
            stats.setdefault(name, {})[key] = stats.get(name, {}).get(key, 0) + delta


def run(nodes: int, jobs: int, count: int, inflight: int, flush: int, terminal_share: float, per_node: int) -> dict:
    from bench.sched_one_eval import RecordingPlanner, _sim_node, _tiny_job, prefill
    from yurt.scheduler import new_scheduler, usage
    from yurt.server.endpoints.allocs import AllocUpdateBatcher
    from yurt.server.plan_apply import PlanApplier
    from yurt.state import AllocUpdate, JobRegister, NodeRegister, StateStore
    from yurt.state.store import relax_gc
    from yurt.structs import Evaluation

    rng = Random(17)
    store = StateStore.open(None)
    sim_nodes = [_sim_node(i) for i in range(nodes)]
    store.apply_batch([NodeRegister(node=n) for n in sim_nodes])
    filled = prefill(store, sim_nodes, per_node) if per_node else 0
    relax_gc()
    applier = PlanApplier(store, lambda: NOW)
    batcher = AllocUpdateBatcher(_Server(store), 0.0, lambda: NOW)
    if not hasattr(usage, "STATS"):  # a version without the counters (before/after runs)
        usage.STATS = {}
    usage.STATS.clear()
    stats: dict[str, dict] = {}
    cpu = dict.fromkeys(("schedule_s", "plan_apply_s", "client_update_s"), 0.0)
    evals_run = placed = 0
    snaps: list = []  # (job, snapshot) of the evals in flight, oldest first
    reports: list[list[str]] = []  # alloc ids per committed plan, not yet reported

    def report_oldest() -> None:
        ids = reports.pop(0)
        for k in range(0, len(ids), flush):
            batcher._pending = {i: AllocUpdate(id=i, client_status="complete" if rng.random() < terminal_share
                                               else "running") for i in ids[k:k + flush]}
            before = dict(usage.STATS)
            start = time.process_time()
            batcher.flush()
            cpu["client_update_s"] += time.process_time() - start
            _phase(stats, "client_update", before, usage.STATS)

    def run_oldest() -> None:
        nonlocal evals_run, placed
        job, snap = snaps.pop(0)
        ev = Evaluation(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), namespace=job.namespace,
                        priority=job.priority, type=job.type, triggered_by="job-register", job_id=job.id,
                        status="pending")
        planner = RecordingPlanner()
        before = dict(usage.STATS)
        start = time.process_time()
        new_scheduler(job.type, snap, planner, now_ns=NOW).process(ev)
        cpu["schedule_s"] += time.process_time() - start
        _phase(stats, "schedule", before, usage.STATS)
        evals_run += 1
        for plan in [planner.plan] if planner.plan is not None else []:
            before = dict(usage.STATS)
            start = time.process_time()
            result = applier.apply(plan)
            cpu["plan_apply_s"] += time.process_time() - start
            _phase(stats, "plan_apply", before, usage.STATS)
            ids = [a.id for allocs in result.node_allocation.values() for a in allocs]
            placed += len(ids)
            reports.append(ids)
        while len(reports) > 1:  # the nodes report a plan's allocs while the next one is scheduled
            report_oldest()

    for j in range(jobs):
        store.apply(JobRegister(job=_tiny_job(f"job-{j}", count)))
        snaps.append((store.snapshot().job_by_id("default", f"job-{j}"), store.snapshot()))
        if len(snaps) >= inflight:
            run_oldest()
    while snaps:
        run_oldest()
    while reports:
        report_oldest()
    sched = stats.get("schedule", {})
    return {
        "bench": "usage_cache", "nodes": nodes, "jobs": jobs, "count": count, "inflight": inflight,
        "existing_allocs": filled, "placed": placed, "evals": evals_run,
        **{k: round(v, 3) for k, v in cpu.items()},
        "recounts_per_eval": round(sched.get("recount", 0) / max(evals_run, 1), 1),
        "recounts_plan_apply": stats.get("plan_apply", {}).get("recount", 0),
        "stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=2, help="evaluations in flight (scheduler workers)")
    parser.add_argument("--flush", type=int, default=250, help="client updates per AllocClientUpdate command")
    parser.add_argument("--terminal-share", type=float, default=0.0, help="share of reports that are `complete`")
    parser.add_argument("--prefill", type=int, default=0, metavar="K", help="the nodes first hold K allocs each")
    args = parser.parse_args()
    print(json.dumps(run(args.nodes, args.jobs, args.count, args.inflight, args.flush, args.terminal_share,
                         args.prefill)))


if __name__ == "__main__":
    main()
