"""W3: registration storm. 10 system jobs are registered on an empty cluster, then N
simulated nodes start at once; measured from the first register until every node reports
its 10 system allocations running. Goal: 5,000 nodes (50,000 allocs) in <= 15 s.
Short mode: 1,000 nodes (10,000 allocs)."""

from __future__ import annotations

import time

import aiohttp

from ..agentproc import AgentProcess
from ..figures import log
from ..fleet import Fleet, sim_node_template
from ..jobs import mock_job
from .c1m_common import ApiProbe, ProgressSampler, rate_by_quarter, server_running_count, submit_jobs

SYSTEM_JOBS = 10
EVENT_LOOP = "uvloop"  # the bench process's loop (bench/eventloop.py)


async def run_storm(base: str, nodes: int, limit_s: float) -> dict:
    total = nodes * SYSTEM_JOBS
    bodies = [mock_job(f"sys-{i}", 0, job_type="system") for i in range(SYSTEM_JOBS)]
    fleet = Fleet(base, nodes, prefix="storm")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        await submit_jobs(http, base, bodies, 1)
        # The clock starts as the fleet registers: the node every simulated node registers is
        # built before it (the bench fingerprinting its own host, ~1 s of imports and driver
        # probes on a cold bench process; cached, so `Fleet.start` reuses it).
        sim_node_template()
        started = time.monotonic()
        try:
            probe = ApiProbe(http, base).start()
            sampler = ProgressSampler(fleet.running, started).start()
            await fleet.start()
            registered = await fleet.wait(lambda: fleet.registered() == nodes, limit_s, 0.1)
            registered_s = time.monotonic() - started
            done = await fleet.wait(lambda: fleet.running() >= total, limit_s - registered_s, 0.1)
            all_running_s = time.monotonic() - started
            await sampler.stop()
            sampler.timeline.append((round(all_running_s, 1), fleet.running()))
            probe_figures = await probe.stop("get_jobs")
        finally:
            await fleet.stop()
        server_running = await server_running_count(http, base, [b["Job"]["ID"] for b in bodies])
    return {
        "nodes": nodes, "system_jobs": SYSTEM_JOBS, "allocs": total, "all_registered": registered,
        "all_running": done, "running_reported": fleet.running(), "running_on_server": server_running,
        "registered_s": round(registered_s, 1), "all_running_s": round(all_running_s, 1),
        "place_rate_per_s": round(fleet.running() / max(all_running_s, 1e-9), 1),
        "rate_by_quarter": rate_by_quarter(sampler.timeline, total), **probe_figures,
        **fleet.counters.figures(),
        "timeline": sampler.timeline[:: max(1, len(sampler.timeline) // 30)],
    }


async def run(short: bool = False, nodes: int | None = None) -> dict:
    nodes = nodes or (1000 if short else 5000)
    agent = AgentProcess(mode="server").start()
    try:
        log(f"W3: {SYSTEM_JOBS} system jobs, then {nodes} nodes at once on {agent.address}")
        cpu_started = time.process_time()
        figures = await run_storm(agent.address, nodes, limit_s=180.0 if short else 600.0)
        figures["server_peak_rss_mb"] = round(agent.peak_rss / 2**20)
        figures["server_heartbeat_misses"] = agent.heartbeat_misses()
        figures["bench_process_cpu_s"] = round(time.process_time() - cpu_started, 1)
        figures["server_cpu_s"] = round(agent.cpu_seconds(), 1)
    finally:
        agent.stop()
    goal_s = 15.0 * nodes / 5000 if short else 15.0
    figures.update(scenario="W3", goal=f"all {figures['allocs']} system allocs running <= {goal_s:.1f} s "
                   "(5,000 nodes: 15 s; short mode scales the goal by nodes)",
                   met=bool(figures["all_running"] and figures["all_running_s"] <= goal_s))
    return figures
