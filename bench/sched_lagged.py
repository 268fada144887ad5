"""W1's scheduler as the server runs it with two workers, in one process: CPU per eval.

`sched_one_eval.py --sequence` runs every eval on the newest snapshot and no client updates.
In the server two scheduler threads evaluate at once, so every other eval reads a snapshot
that is one commit older than the newest, and the nodes report their new allocs running
(each report moves the node's usage index; the plan applier's `UsageCarrier` carries the
cached usage over). Here: `--jobs` tiny service jobs (bench sizes) of `--count`, one eval each;
odd evals run on the snapshot the previous eval started from (the other worker's; `--lag N`:
the one the eval N evals back started from); every
plan goes through the real `PlanApplier.apply` (a partial commit makes the eval retry on the
newest snapshot, as the worker does); after each eval the allocs of the eval before it are
reported running in batches of `--flush` (`AllocClientUpdate`, as
`AllocUpdateBatcher.flush`). `--prefill K`: the nodes first hold K allocs each on average.

Prints one JSON line: scheduler CPU (plan apply and client updates excluded), evals,
attempts (retries after partial commits), and `node_recounts` (NodeBase built by counting a
node's allocs, anywhere: scheduler and plan applier).

    PYTHONPATH=src .venv/bin/python bench/sched_lagged.py [--nodes 5000] [--jobs 40] [--count 1000] [--prefill 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sched_one_eval import _SEQ_RNG, _sim_node, _tiny_job, prefill  # noqa: E402

NOW = 1_700_000_000 * 10**9


class _Planner:
    def __init__(self, applier, store, clock: dict) -> None:
        self.applier, self.store, self.clock = applier, store, clock
        self.placed: list[str] = []
        self.attempts = 0

    def submit_plan(self, plan):
        start = time.process_time()
        result = self.applier.apply(plan)
        self.clock["apply_s"] += time.process_time() - start
        self.attempts += 1
        self.placed.extend(a.id for allocs in result.node_allocation.values() for a in allocs)
        return result, (self.store.snapshot() if result.refresh_index else None)

    def update_eval(self, ev):
        pass

    create_eval = reblock_eval = update_eval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--prefill", type=int, default=0)
    parser.add_argument("--flush", type=int, default=250)
    parser.add_argument("--lag", type=int, default=1, help="odd evals read the snapshot this many evals back")
    args = parser.parse_args()

    from yurt.scheduler import new_scheduler, usage
    from yurt.server.plan_apply import PlanApplier
    from yurt.state import JobRegister, NodeRegister, StateStore
    from yurt.state.commands import AllocClientUpdate, AllocUpdate
    from yurt.state.store import relax_gc
    from yurt.structs import Evaluation

    store = StateStore.open(None)
    nodes = [_sim_node(i) for i in range(args.nodes)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    filled = prefill(store, nodes, args.prefill) if args.prefill else 0
    for j in range(args.jobs):
        store.apply(JobRegister(job=_tiny_job(f"job-{j}", args.count)))
    relax_gc()

    recounts = [0]
    real_init = usage.NodeBase.__init__

    def counting_init(self, *a, **kw):
        recounts[0] += 1
        real_init(self, *a, **kw)

    usage.NodeBase.__init__ = counting_init
    clock = {"apply_s": 0.0, "updates_s": 0.0}
    applier = PlanApplier(store, lambda: NOW)
    sched_cpu: list[float] = []
    attempts = placed = 0
    unreported: list[str] = []
    history: list = []  # the snapshots the last `--lag` evals started from
    for j in range(args.jobs):
        newest = store.snapshot()
        snap = history[0] if (j % 2 and len(history) == args.lag) else newest
        history = (history + [newest])[-args.lag:]
        job = snap.job_by_id("default", f"job-{j}")
        planner = _Planner(applier, store, clock)
        ev = Evaluation(id=str(uuid.UUID(int=_SEQ_RNG.getrandbits(128), version=4)), namespace=job.namespace,
                        priority=job.priority, type=job.type, triggered_by="job-register", job_id=job.id,
                        status="pending")
        start, apply_before = time.process_time(), clock["apply_s"]
        new_scheduler(job.type, snap, planner, now_ns=NOW).process(ev)
        sched_cpu.append(time.process_time() - start - (clock["apply_s"] - apply_before))
        attempts += planner.attempts
        placed += len(planner.placed)
        start = time.process_time()
        for k in range(0, len(unreported), args.flush):  # the eval before's allocs report running
            ids = unreported[k : k + args.flush]
            store.apply(AllocClientUpdate(  # the applier's UsageCarrier carries the usage over
                allocs=[AllocUpdate(id=i, client_status="running") for i in ids], updated_at=NOW))
        clock["updates_s"] += time.process_time() - start
        unreported = planner.placed
    usage.NodeBase.__init__ = real_init
    total = sum(sched_cpu)
    print(json.dumps({
        "bench": "sched_lagged", "lag": args.lag, "nodes": args.nodes, "jobs": args.jobs, "count": args.count,
        "existing_allocs": filled, "placements": placed, "attempts": attempts,
        "sched_cpu_s": round(total, 3), "eval_cpu_ms_median": round(statistics.median(sched_cpu) * 1000, 1),
        "us_per_placement": round(total / max(placed, 1) * 1e6, 1), "node_recounts": recounts[0],
        "apply_s": round(clock["apply_s"], 3), "updates_s": round(clock["updates_s"], 3),
    }))


if __name__ == "__main__":
    main()
