"""The RPC listener's reply writes to many loopback TCP clients: CPU per reply with the GIL held,
uvloop's `transport.write` (a `send()` per reply, inline) against the listener's writer
(`yurt.rpc.writer.BatchWriter`: a loop turn's replies from one thread, one `lio_listio` call).

A receiver process (uvloop, reading and dropping) holds `--conns` connections; each round the
sender's loop writes one `--size`-byte reply to every connection in one loop turn (as a plan's
wakes answer ~500 nodes' watches, or a flush acks its batch), then waits a little for the
receiver. Per reply, `time.thread_time` of the loop thread, of the writer's Python thread (both
hold the GIL while they run) and the process's CPU in all (`time.process_time`: glibc's AIO
helper thread does the sends, without the GIL).

    PYTHONPATH=src .venv/bin/python bench/micro_rpc_send.py [--conns 500] [--size 6500] [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _receiver(port: int, ready) -> None:
    import uvloop

    class Sink(asyncio.Protocol):
        def data_received(self, data) -> None:
            pass

    async def main() -> None:
        await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", port, backlog=4096)
        ready.set()
        await asyncio.sleep(3600)

    uvloop.run(main())


class _Conn(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport


async def _run(args, port: int) -> dict:
    from yurt.rpc.writer import BatchWriter, available, outlet_for

    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(args.conns):
        _, proto = await loop.create_connection(_Conn, "127.0.0.1", port)
        conns.append(proto)
    data = b"x" * args.size
    out: dict = {"bench": "rpc_send", "conns": args.conns, "size": args.size, "rounds": args.rounds,
                 "aio": available()}
    writer = BatchWriter(loop) if available() else None
    outlets = [outlet_for(c.transport) for c in conns] if writer else []
    writer_cpu = [0.0]

    def writer_thread_cpu() -> float:
        if writer is None or writer.thread is None:
            return 0.0
        try:
            with open(f"/proc/self/task/{writer.thread.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return writer_cpu[0]

    modes = ["direct", "writer"] if writer else ["direct"]
    for rep in range(args.reps):
        for mode in modes:
            await asyncio.sleep(0.2)
            w0, t0, p0 = writer_thread_cpu(), time.thread_time(), time.process_time()
            loop_cpu = 0.0
            for _ in range(args.rounds):
                a = time.thread_time()
                if mode == "direct":
                    for c in conns:
                        c.transport.write(data)
                else:
                    for o in outlets:
                        writer.write(o, data)
                loop_cpu += time.thread_time() - a
                await asyncio.sleep(args.pause)
                if mode == "writer":
                    while any(o.inflight for o in outlets):
                        await asyncio.sleep(0.001)
            n = args.conns * args.rounds
            w1, p1 = writer_thread_cpu(), time.process_time()
            writer_cpu[0] = w1
            row = {"loop_us": round(loop_cpu / n * 1e6, 2), "writer_thread_us": round((w1 - w0) / n * 1e6, 2),
                   "process_us": round((p1 - p0) / n * 1e6, 2)}
            row["gil_us"] = round(row["loop_us"] + row["writer_thread_us"], 2)
            out.setdefault(mode, []).append(row)
    if writer:
        writer.close()
    for c in conns:
        c.transport.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conns", type=int, default=500)
    parser.add_argument("--size", type=int, default=6500)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(target=_receiver, args=(port, ready), daemon=True)
    receiver.start()
    ready.wait(10)
    try:
        import uvloop

        out = uvloop.run(_run(args, port))
    finally:
        receiver.kill()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
