"""W1: C1M. A fleet of simulated nodes registers with a server process, then 8 concurrent
submitters register `jobs` service jobs of `count` tiny mock tasks each. Measured from the
first register to every allocation reported running by its node (and acknowledged by the
server): total time, placement rate by quarter (linearity), server peak RSS, and
`GET /v1/jobs` latency while the scheduler is busy.

Goal (full): 5,000 nodes, 1,000 x 1,000 allocs in <= 300 s, near-linear rate, RSS <= 4 GiB.
Short: 500 nodes, 100 x 1,000 allocs in <= 30 s.

    .venv/bin/python -m bench.scenarios.w1_c1m --nodes 100 --jobs 10 --count 100
"""

from __future__ import annotations

import argparse
import json
import time

import aiohttp

from .. import eventloop
from ..agentproc import AgentProcess
from ..figures import latency_summary, log
from ..fleet import Fleet, sim_node_template
from .c1m_common import (
    ApiProbe,
    ProgressSampler,
    rate_by_quarter,
    server_running_count,
    service_jobs,
    submit_jobs,
)

SUBMITTERS = 8
EVENT_LOOP = "uvloop"  # the bench process's loop (bench/eventloop.py): 15-25% less fleet CPU than asyncio's
REGISTER_TIMEOUT = 120.0


def sizes(short: bool) -> dict:
    if short:
        return {"nodes": 500, "jobs": 100, "count": 1000, "goal_s": 30.0, "limit_s": 240.0}
    return {"nodes": 5000, "jobs": 1000, "count": 1000, "goal_s": 300.0, "limit_s": 1500.0}


async def run_c1m(base: str, nodes: int, jobs: int, count: int, limit_s: float, fleet_mode: str = "sim",
                  legacy_watch: bool = False) -> dict:
    total = jobs * count
    fleet = Fleet(base, nodes, mode=fleet_mode, prefix="c1m", legacy_watch=legacy_watch)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        if fleet_mode == "sim":
            # the clock starts at the first register: the node every simulated node registers
            # is built before it (the bench fingerprinting its own host, ~1.2 s on a cold bench
            # process; cached, so `Fleet.start` reuses it), as W3 does
            sim_node_template()
        started = time.monotonic()
        try:
            await fleet.start()
            if not await fleet.wait(lambda: fleet.registered() == nodes, REGISTER_TIMEOUT, 0.2):
                raise RuntimeError(f"only {fleet.registered()} of {nodes} nodes registered in {REGISTER_TIMEOUT}s")
            registered_s = time.monotonic() - started
            log(f"W1: {nodes} nodes registered in {registered_s:.1f}s; submitting {jobs} x {count}")
            probe = ApiProbe(http, base).start()
            sampler = ProgressSampler(fleet.running, started).start()
            submit_started = time.monotonic()
            job_bodies = service_jobs("c1m", jobs, count)
            submit_latencies = await submit_jobs(http, base, job_bodies, SUBMITTERS)
            submitted_s = time.monotonic() - started
            done = await fleet.wait(lambda: fleet.running() >= total, limit_s - (time.monotonic() - started), 0.2)
            all_running_s = time.monotonic() - started
            await sampler.stop()
            probe_figures = await probe.stop("get_jobs")
            sampler.timeline.append((round(all_running_s, 1), fleet.running()))
        finally:
            await fleet.stop()
        server_running = await server_running_count(http, base, [b["Job"]["ID"] for b in job_bodies])
    return {
        "nodes": nodes, "allocs": total, "fleet": fleet_mode, "all_running": done,
        "running_reported": fleet.running(), "running_on_server": server_running,
        "registered_s": round(registered_s, 1), "submitted_s": round(submitted_s, 1),
        "all_running_s": round(all_running_s, 1),
        "place_rate_per_s": round(fleet.running() / max(all_running_s - (submit_started - started), 1e-9), 1),
        "rate_by_quarter": rate_by_quarter(sampler.timeline, total),
        **probe_figures, **latency_summary(submit_latencies, "job_register"),
        **fleet.counters.figures(), "watch_responses": fleet.counters.watch_responses,
        "allocs_pulled": fleet.counters.allocs_pulled, "legacy_watch": fleet.legacy_watch if fleet_mode == "sim" else None,
        "timeline": sampler.timeline[:: max(1, len(sampler.timeline) // 30)],
    }


async def run(short: bool = False, fleet_mode: str = "sim", legacy_watch: bool = False, **override) -> dict:
    size = dict(sizes(short), **override)
    agent = AgentProcess(mode="server").start()
    try:
        log(f"W1: server at {agent.address}")
        cpu_started = time.process_time()
        figures = await run_c1m(agent.address, size["nodes"], size["jobs"], size["count"], size["limit_s"], fleet_mode,
                                legacy_watch)
        figures["server_peak_rss_mb"] = round(agent.peak_rss / 2**20)
        figures["server_heartbeat_misses"] = agent.heartbeat_misses()
        figures["bench_process_cpu_s"] = round(time.process_time() - cpu_started, 1)
        figures["server_cpu_s"] = round(agent.cpu_seconds(), 1)
    finally:
        agent.stop()
    figures.update(scenario="W1", goal=f"all running <= {size['goal_s']:.0f} s from first register; RSS <= 4096 MB",
                   met=bool(figures["all_running"] and figures["all_running_s"] <= size["goal_s"]
                            and figures["server_peak_rss_mb"] <= 4096))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--count", type=int)
    parser.add_argument("--limit-s", type=float, dest="limit_s")
    parser.add_argument("--fleet", choices=("sim", "real"), default="sim")
    parser.add_argument("--legacy-watch", action="store_true", dest="legacy_watch",
                        help="sim nodes watch full allocs (GET /v1/node/:id/allocations) instead of pulling changes")
    args = parser.parse_args()
    override = {k: v for k, v in vars(args).items() if k in ("nodes", "jobs", "count", "limit_s") and v}
    print(json.dumps(eventloop.run(run(args.short, args.fleet, args.legacy_watch, **override), EVENT_LOOP)), flush=True)


if __name__ == "__main__":
    main()
