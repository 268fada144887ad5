"""W6: watch fan-out. W watchers hold blocking queries (`GET /v1/node/:id?index=N&wait=10s`,
spread over a few nodes) while a writer lands R node updates per second (re-registrations
with a changed meta value). Figures: commit -> wake latency (from the write's response, and
conservatively from its request), write latency, and watchers that waited out their timeout
while writes were landing. Goal: wake p99 <= 100 ms, no timeouts, write p99 <= 1 s.

The event stream part of the goal (100 `/v1/event/stream` readers) is skipped: the route
does not exist yet."""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid

import aiohttp

from ..agentproc import AgentProcess
from ..figures import latency_summary, log
from ..fleet import sim_node_template

WATCH_WAIT = "10s"
WATCHED_NODES = 20


class WriteLog:
    """Index -> (request sent, response received) for every write, in index order."""

    def __init__(self) -> None:
        self.indexes: list[int] = []
        self.sent: dict[int, float] = {}
        self.acked: dict[int, float] = {}
        self.latencies: list[float] = []

    def record(self, index: int, sent: float, acked: float) -> None:
        bisect.insort(self.indexes, index)
        self.sent[index], self.acked[index] = sent, acked
        self.latencies.append(acked - sent)

    def first_after(self, min_index: int) -> int | None:
        pos = bisect.bisect_right(self.indexes, min_index)
        return self.indexes[pos] if pos < len(self.indexes) else None


async def _writer(http, base, nodes, rate, duration, writes: WriteLog, in_flight_cap=200):
    sem = asyncio.Semaphore(in_flight_cap)
    tasks = []

    async def one(seq: int) -> None:
        node = dict(nodes[seq % len(nodes)], Meta={"seq": str(seq)})
        async with sem:
            sent = time.perf_counter()
            async with http.put(f"{base}/v1/internal/node/register", json={"Node": node}) as resp:
                body = await resp.json()
            writes.record(int(body["Index"]), sent, time.perf_counter())

    start = time.perf_counter()
    for seq in range(int(rate * duration)):
        delay = start + seq / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(seq)))
    await asyncio.gather(*tasks)


async def _watcher(http, base, node_id, index, stop: asyncio.Event, writes: WriteLog, out: dict):
    url = f"{base}/v1/node/{node_id}"
    while not stop.is_set():
        async with http.get(url, params={"index": str(index), "wait": WATCH_WAIT}) as resp:
            await resp.read()
            new_index = int(resp.headers.get("X-Nomad-Index", "0"))
        woke = time.perf_counter()
        if new_index <= index:
            if not stop.is_set():
                out["timeouts"] += 1
            continue
        first = writes.first_after(index)
        if first is not None and first in writes.acked:
            out["wake_after_ack"].append(max(0.0, woke - writes.acked[first]))
            out["wake_after_send"].append(woke - writes.sent[first])
        out["wakes"] += 1
        index = new_index


async def run_fanout(base: str, watchers: int, rate: float, duration: float) -> dict:
    template = sim_node_template()
    nodes = [dict(template, ID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()), Name=f"w6-{i}", Status="ready")
             for i in range(WATCHED_NODES)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        index = 0
        for node in nodes:
            async with http.put(f"{base}/v1/internal/node/register", json={"Node": node}) as resp:
                index = (await resp.json())["Index"]
        writes, stop = WriteLog(), asyncio.Event()
        out = {"timeouts": 0, "wakes": 0, "wake_after_ack": [], "wake_after_send": []}
        tasks = [asyncio.create_task(_watcher(http, base, nodes[i % len(nodes)]["ID"], index, stop, writes, out))
                 for i in range(watchers)]
        await asyncio.sleep(1.0)  # every watcher is parked
        started = time.perf_counter()
        await _writer(http, base, nodes, rate, duration, writes)
        write_wall = time.perf_counter() - started
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait(tasks, timeout=15)
        for task in tasks:
            task.cancel()
    return {
        "watchers": watchers, "writes": len(writes.latencies),
        "write_rate_achieved": round(len(writes.latencies) / write_wall, 1),
        **latency_summary(out["wake_after_ack"], "wake_after_commit"),
        **latency_summary(out["wake_after_send"], "wake_after_write_sent"),
        **latency_summary(writes.latencies, "write"),
        "watcher_wakes": out["wakes"], "watcher_timeouts": out["timeouts"],
    }


async def run(short: bool = False) -> dict:
    watchers, rate, duration = 1000, 500.0, (10.0 if short else 30.0)
    agent = AgentProcess(mode="server").start()
    try:
        log(f"W6: {watchers} watchers, {rate:.0f} writes/s for {duration:.0f} s on {agent.address}")
        figures = await run_fanout(agent.address, watchers, rate, duration)
        figures["server_peak_rss_mb"] = round(agent.peak_rss / 2**20)
    finally:
        agent.stop()
    p99_wake, p99_write = figures["wake_after_commit_p99_ms"], figures["write_p99_ms"]
    figures.update(scenario="W6", goal="wake p99 <= 100 ms, no watcher timeouts, write p99 <= 1000 ms",
                   event_stream="skipped: no /v1/event/stream route",
                   met=bool(p99_wake is not None and p99_wake <= 100 and p99_write <= 1000
                            and figures["watcher_timeouts"] == 0))
    return figures
