"""Pieces the fleet scenarios (W1, W3, W4) share: submitters, an API latency probe, a
progress sampler, and the server-side check that allocations are running."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any, Callable

import aiohttp

from ..agentproc import REPO
from ..figures import latency_summary, log
from ..jobs import mock_job


async def submit_jobs(http: aiohttp.ClientSession, base: str, jobs: list[dict[str, Any]],
                      submitters: int) -> list[float]:
    """Register `jobs` with `submitters` concurrent submitters; returns each request's latency."""
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []

    async def submitter() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            started = time.perf_counter()
            async with http.put(f"{base}/v1/jobs", json=job) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"register {job['Job']['ID']}: {resp.status} {await resp.text()}")
                await resp.read()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(submitter() for _ in range(submitters)))
    return latencies


def service_jobs(prefix: str, jobs: int, count: int) -> list[dict[str, Any]]:
    return [mock_job(f"{prefix}-{i}", count) for i in range(jobs)]


class ApiProbe:
    """`GET path` every `interval` seconds from a separate process (bench/probe.py), so the
    figure is the server's latency, not the busy bench process's."""

    def __init__(self, http: aiohttp.ClientSession, base: str, path: str = "/v1/jobs", interval: float = 0.25):
        self.url, self.interval = base + path, interval
        self._proc: asyncio.subprocess.Process | None = None

    def start(self) -> "ApiProbe":
        self._starting = asyncio.create_task(self._spawn())
        return self

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.probe", self.url, str(self.interval), cwd=str(REPO),
            stdout=asyncio.subprocess.PIPE)

    async def stop(self, prefix: str = "get_jobs") -> dict[str, Any]:
        await self._starting
        assert self._proc is not None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(self._proc.communicate(), 70)
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (asyncio.TimeoutError, ValueError, IndexError):
            if self._proc.returncode is None:
                self._proc.kill()
            result = {"latencies": [], "errors": -1}
        return {**latency_summary(result["latencies"], prefix), f"{prefix}_errors": result["errors"]}


class ProgressSampler:
    """Samples `value()` every `interval` s: a timeline of (seconds since start, value)."""

    def __init__(self, value: Callable[[], int], started: float, interval: float = 1.0, label: str = "running"):
        self.value, self.started, self.interval, self.label = value, started, interval, label
        self.timeline: list[tuple[float, int]] = []
        self._task: asyncio.Task | None = None

    def start(self) -> "ProgressSampler":
        self._task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        while True:
            now = time.monotonic() - self.started
            self.timeline.append((round(now, 1), self.value()))
            if len(self.timeline) % 10 == 0:
                log(f"  t={now:6.1f}s {self.label}={self.timeline[-1][1]}")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def rate_by_quarter(timeline: list[tuple[float, int]], total: int) -> list[float]:
    """Placement rate (per second) while the count went through each quarter of `total`:
    near-equal numbers mean the rate did not fall off as the cluster filled."""
    rates = []
    for q in range(4):
        lo, hi = total * q / 4, total * (q + 1) / 4
        t_lo = next((t for t, v in timeline if v >= lo), None)
        t_hi = next((t for t, v in timeline if v >= hi), None)
        rates.append(round((hi - lo) / (t_hi - t_lo), 1) if t_lo is not None and t_hi and t_hi > t_lo else None)
    return rates


async def server_running_count(http: aiohttp.ClientSession, base: str, job_ids: list[str]) -> int:
    """Allocations the server records as running, summed from the job summaries."""
    total = 0
    for job_id in job_ids:
        async with http.get(f"{base}/v1/job/{job_id}/summary") as resp:
            if resp.status == 200:
                summary = await resp.json()
                total += sum(g.get("Running", 0) for g in (summary.get("Summary") or {}).values())
    return total
