"""The class window's per-eval set-up (`PlanBuilder._plain_setup`: node table, shuffle,
usage keys, class ids) late in a W1-like run, first attempts and retries.

`--ab`: in the same process, at every window set-up, main's class-id pass before sc6
(`keyed_classes_main` below) and `window_setup.keyed_classes` are both run on fresh copies
of the window (alternating which goes first, after the node table's usage keys are read
for the snapshot: that part is the same code), their classes checked equal, and timed:
median CPU (ms) of each, first attempts and retries (a shared, loaded machine moves both
alike).

On the real state store: `--nodes` sim-sized nodes holding `--prefill` allocs each on
average; `--jobs` tiny service jobs of `--count`, one eval each. The planner commits only
the first half of each eval's first plan (as a partial commit late in W1, when another
worker's plan took the room first), so the eval retries on the newer snapshot with the
job's own allocs on ~count/2 nodes; then the eval's next `--flush`-sized batches of the eval
before's allocs are reported running. Prints one JSON line: CPU per `_plain_setup` (median,
ms) of first attempts and of retries, and the scheduler's CPU per eval (plan apply and
client updates excluded).

    PYTHONPATH=src .venv/bin/python bench/micro_window_setup.py [--nodes 5000] [--jobs 16] [--prefill 100]
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


def keyed_classes_main(win) -> list[int]:
    """`ClassWindow._keyed_classes` of main before sc6 (window.py at 06f8c1a), for `--ab`:
    the key -> class pass (`window_setup.key_classes`, unchanged by sc6), then main's
    node-by-node pass over the job's own and the plan's nodes."""
    from yurt.scheduler.window_setup import key_classes

    perm, tracker = win.layout[0], win.tracker
    out, cmap = key_classes(win)
    bases = win.bases
    nodes, class_of = win.nodes, win._class_of
    own = {a.node_id for a in tracker.snapshot.allocs_by_job(tracker.namespace, tracker.job_id)}
    own.update(tracker.by_node, tracker.stopped, tracker.placed)
    slow = [p for p, c in enumerate(out) if c < 0] if -1 in cmap.values() else []
    if own:
        slow.extend(p for p in map(win.position, own) if p is not None)
    for p in sorted(set(slow)):
        out[p] = class_of(nodes[p], bases[perm[p]])
    return out


def _fresh(win):
    """A copy of a window under construction, before its classes (see ClassWindow.__init__)."""
    import copy

    other = copy.copy(win)
    other.ids, other.kind, other.info, other.score, other.neg, other.stamp = {}, [], [], [], [], []
    other._pos = other._inverse = None
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--prefill", type=int, default=100)
    parser.add_argument("--flush", type=int, default=250)
    parser.add_argument("--ab", action="store_true", help="main's class-id pass against this tree's, in process")
    args = parser.parse_args()

    from msgspec.structs import replace

    from yurt.scheduler import new_scheduler
    from yurt.scheduler.placement import PlanBuilder
    from yurt.server.plan_apply import PlanApplier
    from yurt.state import JobRegister, NodeRegister, StateStore
    from yurt.state.commands import AllocClientUpdate, AllocUpdate
    from yurt.state.store import relax_gc
    from yurt.structs import Evaluation

    store = StateStore.open(None)
    nodes = [_sim_node(i) for i in range(args.nodes)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    prefill(store, nodes, args.prefill)
    for j in range(args.jobs):
        store.apply(JobRegister(job=_tiny_job(f"job-{j}", args.count)))
    relax_gc()
    applier = PlanApplier(store, lambda: NOW)

    setups: list[tuple[int, float]] = []  # (attempt, CPU s)
    real_setup = PlanBuilder._plain_setup

    def timed_setup(self, tg):
        start = time.process_time()
        try:
            return real_setup(self, tg)
        finally:
            setups.append((self.snapshot.index, time.process_time() - start))

    PlanBuilder._plain_setup = timed_setup
    ab: dict[str, list[tuple[int, float]]] = {"main": [], "new": []}  # (retry?, CPU s)
    if args.ab:
        from yurt.scheduler import window_setup

        real_keyed = window_setup.keyed_classes

        def compared(win):
            win.layout[1].usage_keys(win.tracker.snapshot)  # the same code in both: read before timing
            retry = int(bool(win.tracker.job_allocs))
            order = (("main", keyed_classes_main), ("new", real_keyed))
            results = {}
            turn = sum(1 for r, _ in ab["main"] if r == retry)  # alternate per kind (first attempt, retry)
            for name, fn in (order if turn % 2 else order[::-1]):
                other = _fresh(win)
                start = time.process_time()
                out = fn(other)
                ab[name].append((retry, time.process_time() - start))
                results[name] = (out, other.info)
            assert results["main"] == results["new"], "the class ids differ"
            return real_keyed(win)

        window_setup.keyed_classes = compared
    clock = {"apply_s": 0.0}

    class HalfPlanner:
        def __init__(self) -> None:
            self.placed: list[str] = []
            self.attempts = 0

        def submit_plan(self, plan):
            start = time.process_time()
            self.attempts += 1
            partial = self.attempts == 1 and len(plan.node_allocation) > 1
            if partial:  # commit the first half: the eval retries on the newer snapshot
                items = list(plan.node_allocation.items())
                plan_part = replace(plan, node_allocation=dict(items[: len(items) // 2]))
                result = applier.apply(plan_part)
                result = replace(result, refresh_index=store.snapshot().index)
            else:
                result = applier.apply(plan)
            self.placed.extend(a.id for allocs in result.node_allocation.values() for a in allocs)
            clock["apply_s"] += time.process_time() - start
            return result, (store.snapshot() if result.refresh_index else None)

        def update_eval(self, ev):
            pass

        create_eval = reblock_eval = update_eval

    first: list[float] = []
    retry: list[float] = []
    sched: list[float] = []
    unreported: list[str] = []
    for j in range(args.jobs):
        snap = store.snapshot()
        job = snap.job_by_id("default", f"job-{j}")
        planner = HalfPlanner()
        ev = Evaluation(id=str(uuid.UUID(int=_SEQ_RNG.getrandbits(128), version=4)), namespace=job.namespace,
                        priority=job.priority, type=job.type, triggered_by="job-register", job_id=job.id,
                        status="pending")
        del setups[:]
        start, apply_before = time.process_time(), clock["apply_s"]
        new_scheduler(job.type, snap, planner, now_ns=NOW).process(ev)
        sched.append(time.process_time() - start - (clock["apply_s"] - apply_before))
        if setups:
            first.append(setups[0][1])
            retry.extend(t for _, t in setups[1:])
        for k in range(0, len(unreported), args.flush):
            store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status="running")
                                                  for i in unreported[k : k + args.flush]], updated_at=NOW))
        unreported = planner.placed
    ms = lambda v: round(statistics.median(v) * 1000, 2) if v else None  # noqa: E731
    out = {"bench": "micro_window_setup", "nodes": args.nodes, "jobs": args.jobs, "prefill": args.prefill,
           "setup_first_ms": ms(first[1:]), "setup_retry_ms": ms(retry), "retries": len(retry),
           "sched_eval_ms": ms(sched)}
    if args.ab:
        for name, runs in ab.items():
            out[f"classes_{name}_first_ms"] = ms([t for r, t in runs[1:] if not r])
            out[f"classes_{name}_retry_ms"] = ms([t for r, t in runs if r])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
