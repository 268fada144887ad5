"""Measure the state store: alloc placements while taking snapshots (run by hand).

    .venv/bin/python tests/state/bench_store.py [--allocs 100000] [--per-plan 100] [--persistent] [--relax-gc]

Prints JSON. Not a test: unit tests never assert wall-clock times.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from state_fixtures import alloc, evaluation, job, node  # noqa: E402

from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore, relax_gc  # noqa: E402


def run(n_allocs: int, per_plan: int, n_snapshots: int, data_dir: str | None, n_nodes: int) -> dict:
    store = StateStore.open(data_dir)
    nodes = [node() for _ in range(n_nodes)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    j = job("bench", count=n_allocs)
    ev = evaluation(j)
    store.apply(JobRegister(job=j, eval=ev))
    plans = n_allocs // per_plan
    snap_every = max(1, plans // n_snapshots)
    snapshots, snap_time, held = 0, 0.0, []
    t0 = time.perf_counter()
    c0 = time.process_time()
    for p in range(plans):
        placements: dict[str, list] = {}
        for k in range(per_plan):
            i = p * per_plan + k
            a = alloc(j, nodes[i % n_nodes].id, ev.id, idx=i)
            placements.setdefault(a.node_id, []).append(a)
        store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation=placements, updated_at=p))
        if p % snap_every == 0:
            s0 = time.perf_counter()
            for _ in range(max(1, n_snapshots // plans)):
                held.append(store.snapshot())
                snapshots += 1
            snap_time += time.perf_counter() - s0
            held = held[-10:]  # workers keep a few alive
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    snap = store.snapshot()
    t1 = time.perf_counter()
    by_node = sum(len(snap.allocs_by_node(n.id)) for n in nodes[:100])
    read_time = time.perf_counter() - t1
    result = {
        "allocs": len(snap.allocs_by_job("default", "bench")),
        "plans": plans,
        "snapshots": snapshots,
        "apply_seconds": round(elapsed, 3),
        "apply_cpu_seconds": round(cpu, 3),
        "allocs_per_second": round(n_allocs / elapsed),
        "snapshot_seconds_total": round(snap_time, 6),
        "allocs_by_node_100_nodes_seconds": round(read_time, 4),
        "allocs_read_by_node": by_node,
        "persistent": data_dir is not None,
    }
    if data_dir is not None:
        store.close()
        t2 = time.perf_counter()
        reopened = StateStore.open(data_dir)
        result["reopen_seconds"] = round(time.perf_counter() - t2, 3)
        result["reopened_allocs"] = len(reopened.snapshot().allocs_by_job("default", "bench"))
        reopened.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--allocs", type=int, default=100_000)
    ap.add_argument("--per-plan", type=int, default=100)
    ap.add_argument("--snapshots", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--persistent", action="store_true", help="use SQLite in a temporary data dir")
    ap.add_argument("--relax-gc", action="store_true", help="call yurt.state.relax_gc() first")
    args = ap.parse_args()
    if args.relax_gc:
        relax_gc()
    if args.persistent:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(run(args.allocs, args.per_plan, args.snapshots, d, args.nodes)))
    else:
        print(json.dumps(run(args.allocs, args.per_plan, args.snapshots, None, args.nodes)))


if __name__ == "__main__":
    main()
