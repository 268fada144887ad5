"""What the cyclic GC costs on the server's state-write path: one process, no HTTP, no scheduler.

A memory `StateStore` with `--nodes` sim nodes and `--prefill` running allocs (as
`micro_state_writes.py` builds it) gets `--jobs` jobs of `--count` allocs: each job is one
`PlanApply` (allocs copied from one the real scheduler placed, each with its own metrics and
score list, as the scheduler makes them) and client updates in batches of `--flush` (each
alloc a fresh `TaskState` with its event list, as the route decodes them). After every
command a snapshot is taken and the last `--hold` stay alive, as the alloc watches in flight
hold them in a W1 server. The collector runs with the server's policy (`relax_gc`).

Prints one JSON line: process CPU of the measured loop, the young collections' CPU, count,
longest pause, and what they walked (objects and references, from a census at each one when
`--census`: that census is not timed).

    PYTHONPATH=src .venv/bin/python bench/micro_gc.py --nodes 5000 --prefill 100000 --jobs 100
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402


class _Collections:
    """CPU (of the collecting thread) of each young collection; with `census`, the young
    objects each one walks, counted before it starts (not timed)."""

    def __init__(self, census: bool) -> None:
        self.census = census
        self.cpu, self.pauses, self.objects, self.refs = 0.0, [], 0, 0
        self.kinds: collections.Counter = collections.Counter()
        self._start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            if self.census:
                for obj in gc.get_objects(0):
                    kind = type(obj)
                    self.objects += 1
                    if kind in (list, tuple, dict):
                        self.refs += len(obj)
                        first = next(iter(obj.values() if kind is dict else obj), None) if obj else None
                        self.kinds[f"{kind.__name__}[{type(first).__name__}]"] += 1
                    else:
                        self.kinds[kind.__name__] += 1
            self._start = time.thread_time()
        else:
            spent = time.thread_time() - self._start
            self.cpu += spent
            self.pauses.append(spent)

    def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--flush", type=int, default=250)
    parser.add_argument("--hold", type=int, default=10, help="snapshots kept alive (watches in flight)")
    parser.add_argument("--census", action="store_true")
    args = parser.parse_args(argv)

    from bench.jobs import mock_job
    from bench.micro_state_writes import FakeServer, _prefill, register_sim_nodes
    from yurt.server.endpoints.jobs import register_job
    from yurt.state.commands import AllocClientUpdate, AllocUpdate, PlanApply
    from yurt.state.store import StateStore, relax_gc
    from yurt.structs import Job, TaskEvent, TaskState, evolve, generate_uuid

    store = StateStore.open(None)
    server = FakeServer(store)
    node_ids = register_sim_nodes(server, args.nodes)
    _prefill(server, node_ids, max(args.prefill, 1), args.count)
    template = next(iter(store.snapshot().allocs()))
    relax_gc()
    held: collections.deque = collections.deque(maxlen=args.hold)
    watch = _Collections(args.census)
    slot = 0
    started = time.process_time()
    for j in range(args.jobs):
        job = msgspec.convert(mock_job(f"job-{j}", args.count)["Job"], Job)
        register_job(server, job)
        snap = store.snapshot()
        stored = snap.job_by_id("default", job.id)
        ev = next(e for e in snap.evals_by_job("default", job.id) if e.status == "pending")
        by_node: dict[str, list] = {}
        ids = []
        metrics = template.metrics
        for k in range(args.count):
            node_id = node_ids[slot % len(node_ids)]
            slot += 1
            own = evolve(metrics, score_meta_data=[evolve(m) for m in metrics.score_meta_data or ()])
            alloc = evolve(template, id=generate_uuid(), name=f"{job.id}.g[{k}]", job_id=job.id, job=None, eval_id=ev.id,
                           node_id=node_id, metrics=own, task_states=None, client_status="pending", create_index=0,
                           modify_index=0, alloc_modify_index=0)
            by_node.setdefault(node_id, []).append(alloc)
            ids.append(alloc.id)
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation=by_node, updated_at=time.time_ns()))
        held.append(store.snapshot())
        for start in range(0, len(ids), args.flush):
            now = time.time_ns()
            updates = [AllocUpdate(id=i, client_status="running", task_states={
                "t": TaskState(state="running", started_at="2026-11-27T00:00:00Z",
                               events=[TaskEvent(type="Received", time=now), TaskEvent(type="Started", time=now)])})
                for i in ids[start:start + args.flush]]
            store.apply(AllocClientUpdate(allocs=updates, updated_at=now))
            held.append(store.snapshot())
    cpu = time.process_time() - started
    watch.stop()
    out = {
        "nodes": args.nodes, "prefill": args.prefill, "jobs": args.jobs, "count": args.count, "hold": args.hold,
        "cpu_s": round(cpu, 3), "gc_s": round(watch.cpu, 3), "gc_share": round(watch.cpu / cpu, 3) if cpu else 0,
        "collections": len(watch.pauses), "max_pause_ms": round(max(watch.pauses, default=0) * 1000, 1),
        "gc_ms_per_1000_allocs": round(watch.cpu * 1000 / max(args.jobs * args.count / 1000, 1), 1),
    }
    if args.census:
        out.update(walked_objects=watch.objects, walked_refs=watch.refs, top=dict(watch.kinds.most_common(12)))
    print(json.dumps(out))
    store.close()
    return out


if __name__ == "__main__":
    main()
