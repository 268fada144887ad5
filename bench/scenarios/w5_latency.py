"""W5: latency on the dev agent. N sequential registrations of a one-task raw_exec job, each
timed from the register request to the task reported `running` (watched with a blocking
query on the job's allocations). Goal: p50 <= 100 ms, p99 <= 250 ms."""

from __future__ import annotations

import time

import aiohttp

from ..agentproc import AgentProcess
from ..figures import latency_summary, log
from ..jobs import raw_exec_job

PER_RUN_TIMEOUT = 30.0


async def _wait_running(http: aiohttp.ClientSession, base: str, job_id: str, index: int,
                        deadline: float) -> tuple[float | None, float | None]:
    """(time the alloc appeared, time its task was running), perf_counter clock."""
    placed = None
    while time.perf_counter() < deadline:
        async with http.get(f"{base}/v1/job/{job_id}/allocations", params={"index": index, "wait": "5s"}) as resp:
            allocs = await resp.json()
            index = int(resp.headers.get("X-Nomad-Index", index))
        now = time.perf_counter()
        if allocs and placed is None:
            placed = now
        for alloc in allocs:
            states = alloc.get("TaskStates") or {}
            if any(s.get("State") == "running" for s in states.values()):
                return placed, now
            if alloc.get("ClientStatus") in ("failed", "lost"):
                raise RuntimeError(f"job {job_id}: alloc {alloc['ID']} {alloc['ClientStatus']}: {states}")
    return placed, None


async def run_sequence(base: str, runs: int) -> dict:
    to_running, to_placed, timeouts = [], [], 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for i in range(runs):
            job_id = f"w5-{i}"
            t0 = time.perf_counter()
            async with http.put(f"{base}/v1/jobs", json=raw_exec_job(job_id)) as resp:
                resp.raise_for_status()
                index = (await resp.json()).get("Index", 0)
            placed, running = await _wait_running(http, base, job_id, index, t0 + PER_RUN_TIMEOUT)
            if running is None:
                timeouts += 1
            else:
                to_running.append(running - t0)
            if placed is not None:
                to_placed.append(placed - t0)
            async with http.delete(f"{base}/v1/job/{job_id}", params={"purge": "true"}) as resp:
                resp.raise_for_status()
    return {**latency_summary(to_running, "register_to_running"),
            **latency_summary(to_placed, "register_to_placed"), "timeouts": timeouts}


async def run(short: bool = False) -> dict:
    runs = 200
    agent = AgentProcess(mode="dev").start()
    try:
        log(f"W5: {runs} sequential raw_exec job registrations on a dev agent at {agent.address}")
        cpu_start = agent.cpu_seconds()
        figures = await run_sequence(agent.address, runs)
        figures["agent_cpu_s"] = round(agent.cpu_seconds() - cpu_start, 2)  # the dev agent's, not its tasks'
    finally:
        agent.stop()
    figures.update(scenario="W5", runs=runs,
                   goal="register_to_running p50 <= 100 ms, p99 <= 250 ms",
                   met=bool(figures["register_to_running_p50_ms"] is not None
                            and figures["register_to_running_p50_ms"] <= 100
                            and figures["register_to_running_p99_ms"] <= 250 and not figures["timeouts"]))
    return figures
