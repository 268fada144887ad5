"""The server's client status-update path of W1 in one process: CPU per reported alloc.

A SQLite-backed `StateStore` with `--nodes` sim nodes and `--prefill` running allocs gets,
in each of `--rounds` rounds, `--jobs` jobs of `--count` pending allocs (copies of a
scheduled alloc, committed as `PlanApply`, round-robin over the nodes: not measured). Then each node reports its new
allocs running as the sim fleet does over the RPC link (the msgpack body of
`SimNode._update_body`, decoded as `rpc.server._Handlers.allocs_update_then` decodes it,
handed to `AllocUpdateBatcher.submit_then`), and the batcher is flushed every `--flush`
queued updates (W1: one flush per 50 ms window of ~100-200 updates).

Prints one JSON line: CPU seconds (`time.process_time`) of decoding (`decode_s`), queueing
(`queue_s`: the batcher's lookup of each reported alloc) and flushing (`flush_s`: the
failure-eval check, the command's FSM apply, log write and listeners), and per alloc; and
the median of the flushes' CPU per alloc (steadier than the mean on a shared machine).

    PYTHONPATH=src .venv/bin/python bench/micro_client_update.py [--nodes 5000] [--prefill 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402


def _pending_jobs(store, node_ids: list[str], jobs: int, count: int, prefix: str) -> dict[str, list[str]]:
    """`jobs` registered jobs of `count` pending allocs each (copies of a stored alloc); the
    new alloc IDs by node."""
    from bench.jobs import mock_job
    from bench.micro_state_writes import FakeServer
    from yurt.server.endpoints.jobs import register_job
    from yurt.state.commands import PlanApply
    from yurt.structs import Job, evolve, generate_uuid

    server = FakeServer(store)
    snap = store.snapshot()
    template = next(iter(snap._t.allocs.values()))
    by_node_all: dict[str, list[str]] = {}
    slot = 0
    for j in range(jobs):
        job = msgspec.convert(mock_job(f"{prefix}-{j}", count)["Job"], Job)
        register_job(server, job)
        snap = store.snapshot()
        ev = next(e for e in snap.evals_by_job("default", job.id) if e.status == "pending")
        stored = snap.job_by_id("default", job.id)
        by_node: dict[str, list] = {}
        for k in range(count):
            node_id = node_ids[slot % len(node_ids)]
            slot += 1
            alloc = evolve(template, id=generate_uuid(), name=f"{job.id}.g[{k}]", job_id=job.id, job=None,
                           eval_id=ev.id, node_id=node_id, client_status="pending", task_states=None,
                           create_index=0, modify_index=0, alloc_modify_index=0)
            by_node.setdefault(node_id, []).append(alloc)
            by_node_all.setdefault(node_id, []).append(alloc.id)
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation=by_node, updated_at=time.time_ns()))
    return by_node_all


def update_bodies(by_node: dict[str, list[str]], per_request: int) -> list[bytes]:
    """The encoded `allocs update` requests reporting each node's allocs `running`,
    `per_request` allocs a request, as the sim fleet sends them."""
    from bench.simnode import _BatchStates

    encoder = msgspec.msgpack.Encoder()
    bodies = []
    for ids in by_node.values():
        for start in range(0, len(ids), per_request):
            states = _BatchStates()
            bodies.append(encoder.encode({"Allocs": [
                {"ID": alloc_id, "ClientStatus": "running", "ClientDescription": "",
                 "TaskStates": states.get(("t",), "running"), "DeploymentStatus": None, "NetworkStatus": None}
                for alloc_id in ids[start:start + per_request]]}))
    return bodies


async def _measure(store, server, by_node: dict[str, list[str]], flush_every: int, per_request: int) -> dict:
    from yurt.rpc.server import _decode_updates
    from yurt.server.endpoints.allocs import AllocUpdateBatcher

    batcher = AllocUpdateBatcher(server, 0.05, time.time_ns)
    bodies = update_bodies(by_node, per_request)
    acked: list[int] = []
    clock = dict(decode_s=0.0, queue_s=0.0, flush_s=0.0)
    per_alloc: list[float] = []  # each flush's CPU per alloc (its median is steadier on a busy machine)
    queued = flushes = 0
    for body in bodies:
        t0 = time.process_time()
        updates = _decode_updates(body).Allocs
        t1 = time.process_time()
        index = batcher.submit_then(updates, lambda index, exc: acked.append(index))
        t2 = time.process_time()
        clock["decode_s"] += t1 - t0
        clock["queue_s"] += t2 - t1
        if index is not None:
            raise RuntimeError("an update of a stored alloc was not queued")
        queued += len(updates)
        if queued >= flush_every or body is bodies[-1]:
            t0 = time.process_time()
            batcher.flush()
            spent = time.process_time() - t0
            clock["flush_s"] += spent
            per_alloc.append(spent / queued)
            queued = 0
            flushes += 1
    await asyncio.sleep(0.01)  # the batcher's flush task (nothing left to apply)
    if len(acked) != len(bodies):
        raise RuntimeError(f"{len(acked)} of {len(bodies)} requests answered")
    clock["flushes"] = flushes
    clock["flush_median_us"] = statistics.median(per_alloc) * 1e6
    return clock


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--prefill", type=int, default=100_000, help="running allocs in the state beforehand")
    parser.add_argument("--jobs", type=int, default=5, help="jobs of --count pending allocs a round, reported running")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds (each adds --jobs jobs)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--flush", type=int, default=150, help="queued updates per flush")
    parser.add_argument("--per-request", type=int, default=10, help="updates per node request at most")
    parser.add_argument("--memory", action="store_true", help="in-memory store (no SQLite log)")
    args = parser.parse_args(argv)

    from bench.micro_state_writes import FakeServer, _prefill, register_sim_nodes
    from yurt.state.store import StateStore, relax_gc

    tmp = tempfile.mkdtemp(prefix="yurt-micro-cu-")
    store = StateStore.open(None if args.memory else tmp)
    rounds = []
    try:
        server = FakeServer(store)
        node_ids = register_sim_nodes(server, args.nodes)
        _prefill(server, node_ids, max(args.prefill, args.count), args.count)
        relax_gc()
        for r in range(args.rounds):
            by_node = _pending_jobs(store, node_ids, args.jobs, args.count, f"measured{r}")
            gc.collect()
            clock = asyncio.run(_measure(store, server, by_node, args.flush, args.per_request))
            snap = store.snapshot()
            reported = [snap.alloc_by_id(i) for ids in by_node.values() for i in ids]
            clock["running"] = sum(1 for a in reported if a.client_status == "running")
            clock["n"] = len(reported)
            rounds.append(clock)
            del snap, reported
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    n = sum(c["n"] for c in rounds)
    sums = {k: sum(c[k] for c in rounds) for k in ("decode_s", "queue_s", "flush_s")}
    total = sum(sums.values())
    out = {
        "nodes": args.nodes, "prefill": args.prefill, "rounds": args.rounds, "reported": n,
        "running": sum(c["running"] for c in rounds), "flushes": sum(c["flushes"] for c in rounds),
        **{k: round(v, 3) for k, v in sums.items()},
        "total_s": round(total, 3),
        "us_per_alloc": round(total / n * 1e6, 2),
        "flush_us_per_alloc": round(sums["flush_s"] / n * 1e6, 2),
        "queue_us_per_alloc": round(sums["queue_s"] / n * 1e6, 2),
        # the least loaded round's (the machine is shared: its load comes and goes)
        "best_flush_us_per_alloc": round(min(c["flush_s"] / c["n"] for c in rounds) * 1e6, 2),
        "best_queue_us_per_alloc": round(min(c["queue_s"] / c["n"] for c in rounds) * 1e6, 2),
        "flush_median_us_per_alloc": round(statistics.median(c["flush_median_us"] for c in rounds), 2),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
