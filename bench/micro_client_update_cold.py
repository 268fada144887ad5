"""`micro_client_update` with the CPU cache gone cold between queueing and flushing, as in
W1, where ~50 ms of scheduling and other requests run between a status update's decode
(`_Handlers.allocs_update_then` -> `AllocUpdateBatcher._queue`) and the flush that applies
it: after each request is queued, `--thrash` MiB of memory are read (not timed), so what
the flush touches of the decoded updates (and of the stored allocs) comes from memory.

Prints one JSON line: CPU seconds of decode+queue (`queue_s`) and flush (`flush_s`),
`us_per_alloc` (both), and the median over rounds of the per-alloc figure.

    PYTHONPATH=src .venv/bin/python bench/micro_client_update_cold.py [--nodes 5000] [--prefill 100000]
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


async def _measure(server, by_node: dict[str, list[str]], flush_every: int, per_request: int, thrash) -> dict:
    from bench.micro_client_update import update_bodies
    from yurt.rpc.server import _decode_updates
    from yurt.server.endpoints.allocs import AllocUpdateBatcher

    batcher = AllocUpdateBatcher(server, 0.05, time.time_ns)
    bodies = update_bodies(by_node, per_request)
    acked: list[int] = []
    queue_s = flush_s = 0.0
    queued = n = 0
    for body in bodies:
        t0 = time.process_time()
        updates = _decode_updates(body).Allocs
        batcher.submit_then(updates, lambda index, exc: acked.append(index))
        queue_s += time.process_time() - t0
        queued += len(updates)
        n += len(updates)
        thrash()
        if queued >= flush_every or body is bodies[-1]:
            t0 = time.process_time()
            batcher.flush()
            flush_s += time.process_time() - t0
            queued = 0
            thrash()
    await asyncio.sleep(0.01)
    if len(acked) != len(bodies):
        raise RuntimeError(f"{len(acked)} of {len(bodies)} requests answered")
    return dict(queue_s=queue_s, flush_s=flush_s, n=n)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--flush", type=int, default=150)
    parser.add_argument("--per-request", type=int, default=1)
    parser.add_argument("--thrash", type=int, default=32, help="MiB read after each request (0: none)")
    args = parser.parse_args(argv)

    from bench.micro_client_update import _pending_jobs
    from bench.micro_state_writes import FakeServer, _prefill, register_sim_nodes
    from yurt.state.store import StateStore, relax_gc

    junk = bytearray(args.thrash << 20)
    view = memoryview(junk).cast("Q")

    def thrash() -> None:
        if args.thrash:
            view[::8].tolist()  # one word per 64-byte line (not timed)

    tmp = tempfile.mkdtemp(prefix="yurt-micro-cuc-")
    store = StateStore.open(tmp)
    rounds = []
    try:
        server = FakeServer(store)
        node_ids = register_sim_nodes(server, args.nodes)
        _prefill(server, node_ids, max(args.prefill, args.count), args.count)
        relax_gc()
        for r in range(args.rounds):
            by_node = _pending_jobs(store, node_ids, args.jobs, args.count, f"measured{r}")
            gc.collect()
            rounds.append(asyncio.run(_measure(server, by_node, args.flush, args.per_request, thrash)))
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    n = sum(c["n"] for c in rounds)
    q, f = sum(c["queue_s"] for c in rounds), sum(c["flush_s"] for c in rounds)
    out = {"reported": n, "queue_s": round(q, 3), "flush_s": round(f, 3), "us_per_alloc": round((q + f) / n * 1e6, 2),
           "median_round_us_per_alloc": round(statistics.median((c["queue_s"] + c["flush_s"]) / c["n"]
                                                                for c in rounds) * 1e6, 2)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
