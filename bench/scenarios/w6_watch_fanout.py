"""W6: watch fan-out. W watchers hold blocking queries (`GET /v1/node/:id?index=N&wait=10s`,
spread over a few nodes) while a writer lands R node updates per second (re-registrations
with a changed meta value), and E readers follow `/v1/event/stream?topic=Node`. Figures:
commit -> wake latency (from the write's response, and conservatively from its request),
commit -> event received, write latency, and watchers that waited out their timeout while
writes were landing. Goal: wake p99 <= 100 ms, no timeouts, write p99 <= 1 s.

The load generator is one Python process sharing the machine with the server, so it is kept
cheap: each watcher and reader has one persistent keep-alive connection (`bench/simhttp.py`);
a watcher's answer is handled in the connection's protocol callback (its index from the
X-Nomad-Index header, the body not decoded) which sends the next query at once, with no task
or timer per query; readers take each frame's Index and count its events from the raw
line. The writer is paced at R/s over a pool of keep-alive connections and times each write
from its request's send to its response."""

from __future__ import annotations

import asyncio
import bisect
import json
import time
import uuid
from urllib.parse import urlsplit

from ..agentproc import AgentProcess
from ..figures import latency_summary, log
from ..fleet import sim_node_template
from ..simhttp import CallbackChannel, Channel, ChannelStats, ConnectionClosed, request_bytes, stream

EVENT_LOOP = "uvloop"  # the bench process's loop (bench/eventloop.py)
WATCH_WAIT = "10s"
WATCH_DEADLINE_S = 60.0  # a blocking query unanswered this long is dropped and asked again
FRAME_HEAD = b'{"Index":'
TOPIC = b'"Topic":'
WATCHED_NODES = 20
CONNECT_BATCH = 100  # connections opened at once (more overflow the server's accept queue)
REGISTER = "/v1/internal/node/register"


class WriteLog:
    """Index -> (request sent, response received) for every write, in index order, also per node."""

    def __init__(self) -> None:
        self.indexes: list[int] = []
        self.by_node: dict[str, list[int]] = {}
        self.sent: dict[int, float] = {}
        self.acked: dict[int, float] = {}
        self.latencies: list[float] = []

    def record(self, index: int, sent: float, acked: float, node_id: str = "") -> None:
        bisect.insort(self.indexes, index)
        bisect.insort(self.by_node.setdefault(node_id, []), index)
        self.sent[index], self.acked[index] = sent, acked
        self.latencies.append(acked - sent)

    def first_after(self, min_index: int, node_id: str | None = None) -> int | None:
        """The first write after `min_index` (to `node_id` when given: the write that wakes a
        query on that node asked at `min_index`)."""
        indexes = self.indexes if node_id is None else self.by_node.get(node_id, [])
        pos = bisect.bisect_right(indexes, min_index)
        return indexes[pos] if pos < len(indexes) else None


def write_rate_steady(writes: WriteLog, warm_up_s: float = 1.0) -> float | None:
    """Writes answered per second while the writer was sending, after a warm-up: the
    responses in [first request + warm_up_s, last request] over that span. A server that
    keeps up answers at the offered rate (each response one write latency after its
    request); one that falls behind answers at its own capacity. Unlike `write_rate_achieved`
    (all writes over first request -> last response) it does not count the last writes'
    latency as time without writes."""
    if not writes.sent:
        return None
    start, end = min(writes.sent.values()) + warm_up_s, max(writes.sent.values())
    if end <= start:
        return None
    return round(sum(1 for t in writes.acked.values() if start <= t <= end) / (end - start), 1)


class Tally:
    """What the watchers and readers saw (shared, appended to from protocol callbacks)."""

    def __init__(self, readers: int) -> None:
        self.stopped = False
        self.timeouts = self.wakes = self.watch_errors = 0
        self.wake_events: list[tuple[str, int, float]] = []  # (node, index asked, woke): matched to writes at the end
        self.event_frames: list[tuple[int, float]] = []
        self.events = self.event_errors = 0
        self.reader_index = [0] * readers


class Watcher:
    """One blocking-query loop on `GET /v1/node/:id` over its own keep-alive connection."""

    __slots__ = ("after", "before", "conn", "index", "node_id", "tally")

    def __init__(self, host: str, port: int, node_id: str, index: int, tally: Tally, stats: ChannelStats):
        self.conn = CallbackChannel(host, port, self.on_response, stats, with_body=False)
        self.node_id, self.index, self.tally = node_id, index, tally
        # the request's bytes around its index, built once
        self.before, self.after = request_bytes(
            "GET", f"/v1/node/{node_id}?index=\0&wait={WATCH_WAIT}", host, port).split(b"\0")

    def ask(self) -> None:
        self.conn.send_bytes(b"%s%d%s" % (self.before, self.index, self.after))

    def on_response(self, resp) -> None:
        woke = time.perf_counter()
        tally = self.tally
        if isinstance(resp, ConnectionClosed):
            tally.watch_errors += 1
            if not tally.stopped:
                asyncio.get_running_loop().create_task(self.restart())
            return
        if resp.index <= self.index:
            if not tally.stopped:
                tally.timeouts += 1
        else:
            tally.wake_events.append((self.node_id, self.index, woke))
            tally.wakes += 1
            self.index = resp.index
        if not tally.stopped:
            self.ask()

    async def restart(self) -> None:
        try:
            await self.conn.connect()
            self.ask()
        except OSError as exc:
            log(f"W6: watcher reconnect failed: {exc}")

    def done(self, last_write: int) -> bool:
        """Nothing more to see after the writes stopped: no query out, or it has seen the last write."""
        return self.conn.pending_since is None or self.index >= last_write


class EventReader:
    """Follows `/v1/event/stream?topic=Node`: each frame's Index is a write's index."""

    __slots__ = ("partial", "reader", "tally")

    def __init__(self, reader: int, tally: Tally):
        self.reader, self.tally, self.partial = reader, tally, b""

    def on_data(self, data: bytes) -> None:
        now, start = time.perf_counter(), 0
        if self.partial:  # the line begun in the last piece: completed on its own, not by copying `data`
            first = data.find(b"\n") + 1
            if not first:
                self.partial += data
                return
            line, self.partial, start = self.partial + data[:first], b"", first
            self._lines(line, 0, len(line), now)
        end = data.rfind(b"\n", start) + 1
        if end:
            self._lines(data, start, end, now)
        else:
            end = start
        if end < len(data):
            self.partial = data[end:]

    def _lines(self, data: bytes, pos: int, end: int, now: float) -> None:
        """Whole lines `data[pos:end]`. The load generator shares the 2 cores with the server:
        each frame's Index is read and its events counted without decoding the (3 KB per
        node) payloads."""
        tally, frames, last, head = self.tally, self.tally.event_frames, None, len(FRAME_HEAD)
        count_from = pos
        while pos < end:
            eol = data.index(b"\n", pos)
            if data.startswith(FRAME_HEAD, pos):  # not a heartbeat `{}`
                last = int(data[pos + head : data.index(b",", pos + head)])
                frames.append((last, now))
            pos = eol + 1
        tally.events += data.count(TOPIC, count_from, end)
        if last is not None:
            tally.reader_index[self.reader] = last

    async def run(self, host: str, port: int, stats: ChannelStats) -> None:
        resp = await stream(host, port, "GET", "/v1/event/stream?topic=Node", self.on_data, stats)
        if resp.status != 200:
            self.tally.event_errors += 1


async def _writer(host, port, nodes, rate, duration, writes: WriteLog, stats: ChannelStats, in_flight_cap=200):
    """Paced: write `seq` is due at start + seq / rate; late ones go out at once (up to
    `in_flight_cap` in flight, each on a free keep-alive connection of the pool). The pool's
    connections are opened before the clock starts: opened mid-run in a burst, they overflowed
    the server's accept queue and SYN retransmits (1, 3, 7 s...) showed up as write latency."""
    sem, free, tasks = asyncio.Semaphore(in_flight_cap), [], []
    for _ in range(0, in_flight_cap, 25):
        chans = [Channel(host, port, stats) for _ in range(25)]
        await asyncio.gather(*(ch.request("GET", "/v1/status/leader") for ch in chans))
        free.extend(chans)

    # each node's register body around its `seq` meta value, encoded once: the bytes of
    # json.dumps({"Node": dict(node, Meta={"seq": str(seq)})})
    bodies = [json.dumps({"Node": dict(node, Meta={"seq": "\0"})}).encode().split(b"\\u0000") for node in nodes]

    async def one(seq: int) -> None:
        node = nodes[seq % len(nodes)]
        before, after = bodies[seq % len(nodes)]
        body = b"%s%d%s" % (before, seq, after)
        async with sem:
            ch = free.pop()
            sent = time.perf_counter()
            resp = await ch.request("PUT", REGISTER, body)
            acked = time.perf_counter()
            free.append(ch)
        if not resp.ok() or not resp.index:
            raise RuntimeError(f"node register: {resp.status} {resp.body[:200]!r}")
        writes.record(resp.index, sent, acked, node["ID"])

    start = time.perf_counter()
    for seq in range(int(rate * duration)):
        delay = start + seq / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(seq)))
    await asyncio.gather(*tasks)
    for ch in free:
        ch.close()


async def _sweep(watchers: list[Watcher], tally: Tally) -> None:
    """Drops blocking queries left unanswered for WATCH_DEADLINE_S and asks again."""
    while not tally.stopped:
        await asyncio.sleep(1.0)
        limit = time.monotonic() - WATCH_DEADLINE_S
        for w in watchers:
            if w.conn.pending_since is not None and w.conn.pending_since < limit:
                tally.watch_errors += 1
                w.conn.close()
                asyncio.get_running_loop().create_task(w.restart())


async def run_fanout(base: str, watchers: int, rate: float, duration: float, readers: int = 100) -> dict:
    url = urlsplit(base)
    host, port = url.hostname, url.port
    template = sim_node_template()
    nodes = [dict(template, ID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()), Name=f"w6-{i}", Status="ready")
             for i in range(WATCHED_NODES)]
    stats = ChannelStats()
    setup = Channel(host, port, stats)
    index = 0
    for node in nodes:
        resp = await setup.request("PUT", REGISTER, json.dumps({"Node": node}).encode())
        index = json.loads(resp.body)["Index"]
    setup.close()
    writes, tally = WriteLog(), Tally(readers)
    event_readers = [EventReader(r, tally) for r in range(readers)]
    event_tasks = []
    for r in event_readers:
        event_tasks.append(asyncio.create_task(r.run(host, port, stats)))
        if len(event_tasks) % CONNECT_BATCH == 0:
            await asyncio.sleep(0.05)
    parked = [Watcher(host, port, nodes[i % len(nodes)]["ID"], index, tally, stats) for i in range(watchers)]
    for start in range(0, watchers, CONNECT_BATCH):
        batch = parked[start : start + CONNECT_BATCH]
        await asyncio.gather(*(w.conn.connect() for w in batch))
        for w in batch:
            w.ask()
    sweeper = asyncio.create_task(_sweep(parked, tally))
    await asyncio.sleep(1.0)  # every watcher is parked
    started, cpu_started = time.perf_counter(), time.process_time()
    await _writer(host, port, nodes, rate, duration, writes, stats)
    # from the first write's request to the last write's response: the pool's connections
    # are opened inside `_writer` before its clock starts, and are not writes
    write_wall = max(writes.acked.values(), default=started) - min(writes.sent.values(), default=started)
    await asyncio.sleep(0.5)
    tally.stopped = True
    # a query still out may yet be woken by the last writes (its wake counts); one that has
    # seen the last write can only time out now (not counted), as can any after 15 s
    last_write, waited = max(writes.indexes, default=0), time.perf_counter()
    while not all(w.done(last_write) for w in parked) and time.perf_counter() - waited < 15:
        await asyncio.sleep(0.1)
    for w in parked:
        w.conn.close()
    # the readers may lag behind the writes: give them time to read everything written
    catch_up_started = time.perf_counter()
    while readers and min(tally.reader_index) < last_write and time.perf_counter() - catch_up_started < 30:
        await asyncio.sleep(0.1)
    catch_up_s = time.perf_counter() - catch_up_started
    load_cpu_s = time.process_time() - cpu_started
    for task in event_tasks + [sweeper]:
        task.cancel()
    await asyncio.gather(*event_tasks, sweeper, return_exceptions=True)
    log(f"W6: {stats.connects} connects, {stats.requests} requests, {tally.watch_errors} watch errors; "
        f"bench CPU {load_cpu_s:.1f} s from the first write to the readers' catch-up")
    # a query on node N asked at index I is woken by the first write to N after I
    wake_after_ack, wake_after_send, any_node = [], [], []
    for node_id, asked, woke in tally.wake_events:
        first = writes.first_after(asked, node_id)
        if first is not None:
            wake_after_ack.append(max(0.0, woke - writes.acked[first]))
            wake_after_send.append(woke - writes.sent[first])
        first = writes.first_after(asked)
        if first is not None:
            any_node.append(max(0.0, woke - writes.acked[first]))
    any_node_p = latency_summary(any_node, "x")
    log(f"W6: wake after the first write to ANY node (the matching before 2026-11-27) p50 / p99 "
        f"{any_node_p['x_p50_ms']} / {any_node_p['x_p99_ms']} ms")
    event_after_ack = [max(0.0, at - writes.acked[i]) for i, at in tally.event_frames if i in writes.acked]
    return {
        "watchers": watchers, "writes": len(writes.latencies),
        "write_rate_offered": rate, "write_rate_achieved": round(len(writes.latencies) / write_wall, 1),
        "write_rate_steady": write_rate_steady(writes),
        **latency_summary(wake_after_ack, "wake_after_commit"),
        **latency_summary(wake_after_send, "wake_after_write_sent"),
        **latency_summary(writes.latencies, "write"),
        "watcher_wakes": tally.wakes, "watcher_timeouts": tally.timeouts,
        "event_readers": readers, "events_expected": readers * len(writes.latencies),
        "events_received": tally.events, "event_stream_errors": tally.event_errors,
        "event_readers_caught_up": sum(1 for i in tally.reader_index if i >= last_write),
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
    steady = figures["write_rate_steady"]
    figures.update(scenario="W6", goal=f"while {rate:.0f} writes/s land (steady answered rate >= 95% of it): "
                   "wake p99 <= 100 ms, no watcher timeouts, write p99 <= 1000 ms",
                   met=bool(p99_wake is not None and p99_wake <= 100 and p99_write <= 1000
                            and figures["watcher_timeouts"] == 0
                            and steady is not None and steady >= 0.95 * rate))
    return figures
