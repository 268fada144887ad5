"""`GET /v1/jobs` server-side CPU as W1 sees it: 1,000 W1 jobs (bench.jobs.mock_job,
registered through the HTTP route) in a real `Server`, the handler called directly (no
client, no socket), and between two listings `--changed` jobs' summaries replaced (W1: the
jobs being placed) and the answer cache cleared (W1: `job_summary` moves between polls).

Prints one JSON line: per request, median process CPU (ms) of the whole handler, and of its
parts (compute: list + stubs; encode: `json_response`), over `--rounds` requests.

    PYTHONPATH=src .venv/bin/python bench/micro_jobs_get.py --jobs 1000 --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiohttp.test_utils import TestClient, TestServer, make_mocked_request  # noqa: E402

from bench.jobs import mock_job  # noqa: E402
from yurt.http import build_app  # noqa: E402
from yurt.http import routes_jobs  # noqa: E402
from yurt.http.query import responses_of  # noqa: E402
from yurt.server import FakeClock, Server, ServerConfig  # noqa: E402
from yurt.structs import evolve  # noqa: E402


async def main(args) -> dict:
    srv = Server(ServerConfig(num_schedulers=0, min_heartbeat_ttl=1.0, heartbeat_grace=1.0), clock=FakeClock())
    await srv.start()
    app = build_app(srv)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        for i in range(args.jobs):
            async with client.put("/v1/jobs", json=mock_job(f"c1m-{i}", 1000)) as resp:
                assert resp.status == 200, await resp.text()
        store = srv.state
        summaries = store.snapshot()
        keys = [(j.namespace, j.id) for j in summaries.jobs()]
        handler = routes_jobs.list_jobs
        whole, sizes = [], set()
        for r in range(args.rounds):
            # `--changed` summaries replaced in the state: new objects, as a client update makes
            snap = store.snapshot()
            changed = [keys[(r * args.changed + k) % len(keys)] for k in range(args.changed)]
            _replace_summaries(store, snap, changed, r)
            responses_of(store).clear()
            request = make_mocked_request("GET", "/v1/jobs", app=app)
            t0 = time.process_time()
            resp = await handler(request)
            whole.append(time.process_time() - t0)
            sizes.add(len(resp.body))
        return {"jobs": args.jobs, "changed": args.changed, "rounds": args.rounds,
                "request_ms_median": round(statistics.median(whole) * 1e3, 3),
                "request_ms_p90": round(sorted(whole)[int(len(whole) * 0.9)] * 1e3, 3),
                "body_bytes": sorted(sizes)[-1]}
    finally:
        await client.close()
        await srv.stop()


def _replace_summaries(store, snap, keys, r) -> None:
    """New JobSummary objects for `keys` (running count `r`), committed as one transaction
    (the store's write path without a command: the micro needs only new summary objects)."""
    from yurt.state.cow import new_generation
    from yurt.state.txn import Txn

    base = store._tables
    txn = Txn(base, new_generation(), base.index + 1)
    for ns, job_id in keys:
        summary = snap.job_summary(ns, job_id)
        groups = {name: evolve(g, running=r) for name, g in summary.summary.items()}
        txn.put_summary(evolve(summary, summary=groups))
    store._tables = txn.commit()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--changed", type=int, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
