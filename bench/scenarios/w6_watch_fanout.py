"""W6: watch fan-out. W watchers hold blocking queries (`GET /v1/node/:id?index=N&wait=10s`,
spread over a few nodes) while a writer lands R node updates per second (re-registrations
with a changed meta value), and E readers follow `/v1/event/stream?topic=Node`. Figures:
commit -> wake latency (from the write's response, and conservatively from its request),
commit -> event received, write latency, and watchers that waited out their timeout while
writes were landing. Goal: wake p99 <= 100 ms, no timeouts, write p99 <= 1 s."""

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
FRAME_HEAD = b'{"Index":'
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
        out["wake_events"].append((index, woke))  # matched to writes once all are logged
        out["wakes"] += 1
        index = new_index


async def _event_reader(http, base, writes: WriteLog, out: dict, reader: int):
    """Read NDJSON frames; each frame's Index is a write's index (node events only)."""
    async with http.get(f"{base}/v1/event/stream", params={"topic": "Node"},
                        timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
        if resp.status != 200:
            out["event_errors"] += 1
            return
        async for line in resp.content:
            if not line.startswith(FRAME_HEAD):  # heartbeat `{}`
                continue
            now = time.perf_counter()
            # the load generator shares the 2 cores with the server: read the frame's Index
            # and count its events without decoding the (3 KB per node) payloads
            index = int(line[len(FRAME_HEAD):line.index(b",", len(FRAME_HEAD))])
            out["event_frames"].append((index, now))
            out["events"] += line.count(b'"Topic":')
            out["reader_index"][reader] = index


async def run_fanout(base: str, watchers: int, rate: float, duration: float, readers: int = 100) -> dict:
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
        out = {"timeouts": 0, "wakes": 0, "wake_events": [], "event_frames": [], "events": 0, "event_errors": 0,
               "reader_index": [0] * readers}
        event_tasks = [asyncio.create_task(_event_reader(http, base, writes, out, r)) for r in range(readers)]
        tasks = [asyncio.create_task(_watcher(http, base, nodes[i % len(nodes)]["ID"], index, stop, writes, out))
                 for i in range(watchers)]
        await asyncio.sleep(1.0)  # every watcher is parked
        started = time.perf_counter()
        await _writer(http, base, nodes, rate, duration, writes)
        write_wall = time.perf_counter() - started
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait(tasks, timeout=15)
        # the readers may lag behind the writes: give them time to read everything written
        last_write, catch_up_started = max(writes.indexes, default=0), time.perf_counter()
        while readers and min(out["reader_index"]) < last_write and time.perf_counter() - catch_up_started < 30:
            await asyncio.sleep(0.1)
        catch_up_s = time.perf_counter() - catch_up_started
        for task in tasks + event_tasks:
            task.cancel()
        await asyncio.gather(*event_tasks, return_exceptions=True)
    wake_after_ack, wake_after_send = [], []
    for index, woke in out["wake_events"]:
        first = writes.first_after(index)
        if first is not None:
            wake_after_ack.append(max(0.0, woke - writes.acked[first]))
            wake_after_send.append(woke - writes.sent[first])
    event_after_ack = [max(0.0, at - writes.acked[i]) for i, at in out["event_frames"] if i in writes.acked]
    return {
        "watchers": watchers, "writes": len(writes.latencies),
        "write_rate_achieved": round(len(writes.latencies) / write_wall, 1),
        **latency_summary(wake_after_ack, "wake_after_commit"),
        **latency_summary(wake_after_send, "wake_after_write_sent"),
        **latency_summary(writes.latencies, "write"),
        "watcher_wakes": out["wakes"], "watcher_timeouts": out["timeouts"],
        "event_readers": readers, "events_expected": readers * len(writes.latencies),
        "events_received": out["events"], "event_stream_errors": out["event_errors"],
        "event_readers_caught_up": sum(1 for i in out["reader_index"] if i >= max(writes.indexes, default=0)),
        "event_catch_up_s": round(catch_up_s, 1),
        **latency_summary(event_after_ack, "event_after_commit"),
    }


async def run(short: bool = False) -> dict:
    watchers, rate, duration = 1000, 500.0, (10.0 if short else 30.0)
    agent = AgentProcess(mode="server").start()
    try:
        log(f"W6: {watchers} watchers, {rate:.0f} writes/s for {duration:.0f} s on {agent.address}")
        cpu_started = time.process_time()
        figures = await run_fanout(agent.address, watchers, rate, duration)
        figures["server_peak_rss_mb"] = round(agent.peak_rss / 2**20)
        figures["server_cpu_s"] = round(agent.cpu_seconds(), 1)
        figures["bench_process_cpu_s"] = round(time.process_time() - cpu_started, 1)
    finally:
        agent.stop()
    p99_wake, p99_write = figures["wake_after_commit_p99_ms"], figures["write_p99_ms"]
    figures.update(scenario="W6", goal="wake p99 <= 100 ms, no watcher timeouts, write p99 <= 1000 ms",
                   met=bool(p99_wake is not None and p99_wake <= 100 and p99_write <= 1000
                            and figures["watcher_timeouts"] == 0))
    return figures
