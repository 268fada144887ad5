"""Microbenchmark (not a test): the server's CPU per blocking-query wake and per event-stream
send. A `yurt agent -server` process; N raw-socket watchers hold `GET /v1/node/:id?index=`
on ONE node, E readers follow `/v1/event/stream?topic=Node`; W node updates are written one
after another, each waiting until every watcher got its answer and asked again. The server
process's CPU (user + system) is read before and after the writes, so the figure does not
depend on the load generator (a separate process) or the machine's load.

    PYTHONPATH=$PWD/src:$PWD python tests/http/wake_microbench.py --watchers 200 --readers 0 --writes 300

Prints one JSON line: server CPU per write, and per wake / per event send once the bare
write's cost (a run with no watchers and no readers) is taken off."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

import psutil

from bench.agentproc import AgentProcess
from bench.fleet import sim_node_template


class RawHTTP(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection that sends prepared requests and hands back
    (headers, body) with as little parsing as possible (Content-Length bodies only)."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._maybe_done()

    def _maybe_done(self) -> None:
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None:
            return
        head = self.buf[:head_end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
        if len(self.buf) < head_end + 4 + length:
            return
        body = self.buf[head_end + 4:head_end + 4 + length]
        self.buf = self.buf[head_end + 4 + length:]
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result((head, body))

    def request(self, raw: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter


class StreamCounter(asyncio.Protocol):
    """Reads an event stream and counts its bytes."""

    def __init__(self) -> None:
        self.received = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)


def _index_of(head: bytes) -> int:
    at = head.find(b"x-nomad-index:")
    return int(head[at + 14:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])


async def _connect(port: int, factory):
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(factory, "127.0.0.1", port)
    return proto


def _put(path: str, body: bytes) -> bytes:
    return (f"PUT {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def run(port: int, watchers: int, readers: int, writes: int, server_pid: int) -> dict:
    node = dict(sim_node_template(), ID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()), Name="micro", Status="ready")
    writer = await _connect(port, RawHTTP)
    head, body = await writer.request(_put("/v1/internal/node/register", json.dumps({"Node": node}).encode()))
    index = json.loads(body)["Index"]
    conns = [await _connect(port, RawHTTP) for _ in range(watchers)]
    streams = [await _connect(port, StreamCounter) for _ in range(readers)]
    for s in streams:
        s.transport.write(b"GET /v1/event/stream?topic=Node HTTP/1.1\r\nHost: bench\r\n\r\n")

    def ask(conn, at):
        return conn.request(f"GET /v1/node/{node['ID']}?index={at}&wait=60s HTTP/1.1\r\nHost: bench\r\n\r\n".encode())

    pending = [ask(c, index) for c in conns]
    await asyncio.sleep(1.0)  # every watcher is parked
    proc = psutil.Process(server_pid)
    before, started = proc.cpu_times(), time.perf_counter()
    last_wake_ms = []
    for seq in range(writes):
        node["Meta"] = {"seq": str(seq)}
        head, body = await writer.request(_put("/v1/internal/node/register", json.dumps({"Node": node}).encode()))
        acked, index = time.perf_counter(), json.loads(body)["Index"]
        if pending:
            answers = await asyncio.gather(*pending)
            last_wake_ms.append((time.perf_counter() - acked) * 1000)
            assert all(_index_of(h) >= index for h, _ in answers), "a watcher woke before the write"
            pending = [ask(c, index) for c in conns]
        await asyncio.sleep(0.005)  # let the new requests park
    if readers:  # until the streams went quiet (every event sent)
        total = -1
        while total != sum(s.received for s in streams):
            total = sum(s.received for s in streams)
            await asyncio.sleep(0.3)
    after, wall = proc.cpu_times(), time.perf_counter() - started
    for conn in conns + streams:
        conn.transport.close()
    user, system = after.user - before.user, after.system - before.system
    last_wake_ms.sort()
    return {
        "watchers": watchers, "readers": readers, "writes": writes,
        "server_cpu_s": round(user + system, 3), "server_user_s": round(user, 3), "server_sys_s": round(system, 3),
        "cpu_per_write_ms": round((user + system) / writes * 1000, 3),
        "last_wake_after_ack_p50_ms": round(last_wake_ms[len(last_wake_ms) // 2], 2) if last_wake_ms else None,
        "wall_s": round(wall, 2),
        "event_bytes": sum(s.received for s in streams),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--readers", type=int, default=0)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--no-base", action="store_true", help="skip the bare-write run")
    args = parser.parse_args()
    agent = AgentProcess(mode="server").start()
    print(f"server pid {agent.proc.pid}", file=sys.stderr, flush=True)
    try:
        out = asyncio.run(run(agent.port, args.watchers, args.readers, args.writes, agent.proc.pid))
        if not args.no_base:
            base = asyncio.run(run(agent.port, 0, 0, args.writes, agent.proc.pid))
            out["bare_write_cpu_ms"] = base["cpu_per_write_ms"]
            extra = out["cpu_per_write_ms"] - base["cpu_per_write_ms"]
            if args.watchers:
                out["cpu_per_wake_us"] = round(extra * 1000 / args.watchers, 1) if not args.readers else None
            if args.readers and not args.watchers:
                out["cpu_per_event_send_us"] = round(extra * 1000 / args.readers, 1)
    finally:
        agent.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
