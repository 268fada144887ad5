"""The server's RPC listener (`yurt.rpc.server`) per request, without sockets: CPU from a
request frame handed to its connection (`data_received`) to the reply frame written.

A connection with a stub transport gets `--requests` frames, `--batch` per `data_received`
call (many clients' requests arrive a few at a time), and the loop runs until every reply
is written. Two kinds of request:
- `info`: `GET /v1/internal/rpc`, answered inside the listener: the fixed cost per request
  (framing, decoding, the task, dispatch, encoding);
- `watch`: the delta alloc watch (`?delta=1&known=K`) of `--nodes` nodes, each with one alloc
  written since the index it sends (what a wake answers), as the sim node asks it.

Prints one JSON line: CPU microseconds per request (`time.process_time`). Runs on uvloop when
it is installed (as the agent does).

    PYTHONPATH=src .venv/bin/python bench/micro_rpc_server.py [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec


class _Transport:
    """Counts the replies written."""

    def __init__(self) -> None:
        self.replies = 0

    def write(self, data) -> None:
        self.replies += 1

    def get_extra_info(self, name, default=None):
        return default

    def close(self) -> None:
        pass


class _Config:
    region = "global"


class _Server:
    def __init__(self, state):
        self.state = state
        self.config = _Config()
        self.leadership = None
        self.leader = True


async def _serve_all(conn, transport: _Transport, frames: list[bytes], batch: int) -> float:
    want = transport.replies + len(frames)
    chunks = [b"".join(frames[i:i + batch]) for i in range(0, len(frames), batch)]
    t0 = time.process_time()
    for chunk in chunks:
        conn.data_received(chunk)
        await asyncio.sleep(0)
    while transport.replies < want:
        await asyncio.sleep(0)
    return time.process_time() - t0


async def run(args) -> dict:
    from bench.jobs import mock_job
    from yurt.rpc import INFO_PATH, frame
    from yurt.rpc.server import RPCServer, _Connection
    from yurt.state.commands import JobRegister, PlanApply
    from yurt.state.store import StateStore
    from yurt.structs import Job
    from yurt.testing.mock import mock_alloc, mock_node

    store = StateStore.open(None)
    rpc = RPCServer(_Server(store))
    transport = _Transport()
    conn = _Connection(rpc)
    conn.connection_made(transport)
    out = {"requests": args.requests, "batch": args.batch, "loop": type(asyncio.get_running_loop()).__module__}

    info = [bytes(frame((i, "GET", INFO_PATH, None, None))) for i in range(args.requests)]
    await _serve_all(conn, transport, info[:1000], args.batch)  # warm up
    out["info_us_per_request"] = round(await _serve_all(conn, transport, info, args.batch) / len(info) * 1e6, 2)

    job = msgspec.convert(mock_job("rpc", args.nodes * args.rounds)["Job"], Job)
    store.apply(JobRegister(job=job, submit_time=1))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    nodes = {str(uuid.uuid4()): None for _ in range(args.nodes)}
    node_objs = {n: mock_node(id=n) for n in nodes}
    spent, answered = 0.0, 0
    for r in range(args.rounds):
        before = store.snapshot()
        store.apply(PlanApply(eval_id="e", job=job, updated_at=1,
                              node_allocation={n: [mock_alloc(job, o, index=r)] for n, o in node_objs.items()}))
        frames = [bytes(frame((i, "GET", f"/v1/internal/node/{n}/allocs",
                               {"index": str(before.table_index("allocs:node:" + n)), "wait": "30s", "delta": "1",
                                "known": str(r)}, None)))
                  for i, n in enumerate(nodes)]
        spent += await _serve_all(conn, transport, frames, args.batch)
        answered += len(frames)
    out["watch_us_per_request"] = round(spent / answered * 1e6, 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        out = runner.run(run(args))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
