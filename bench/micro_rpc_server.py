"""The server's RPC listener (`yurt.rpc.server`) per request, without sockets: CPU from a
request frame handed to its connection (`data_received`) to the reply frame written.

A connection with a stub transport gets `--requests` frames, `--batch` per `data_received`
call (many clients' requests arrive a few at a time), and the loop runs until every reply
is written. Two kinds of request:
- `info`: `GET /v1/internal/rpc`, answered inside the listener: the fixed cost per request
  (framing, decoding, the task, dispatch, encoding);
- `watch`: the delta alloc watch (`?delta=1&known=K`) of `--nodes` nodes, each with one alloc
  written since the index it sends (what a wake answers), as the sim node asks it;
- `cycle` (W1's steady state, one connection per node): every node's watch is blocked; a plan
  places one alloc on each node, which wakes the watches; each node then sends its next watch
  (it blocks) and its `allocs/update` (the alloc `running`, as the sim node's body), which the
  update batcher turns into one client-update command. That commit writes no node's version
  map, so it wakes no watch (`ChangeWatchers.notify(versions_changed=False)`; before
  2026-11-27 it woke every watch once more, which checked and waited on: ~8 us per report
  here). `cycle_us_per_alloc`: the listener's CPU for all of that per alloc placed, the
  state writes themselves excluded
  (`cycle_apply_us_per_alloc`: the plan and client-update commits, for scale); in parts:
  `cycle_wake_us` (the plan's wakes and answers), `cycle_requests_us` (the next watch and the
  report read and dispatched; `cycle_watch_requests_us` + `cycle_update_requests_us`, the two
  apart), `cycle_reports_us` (the batch of reports: its command built,
  the acknowledgements, any wakes its commit causes). `--allocs-per-node N`: each plan places N
  allocs on every node, without their job (as the scheduler's plans: W1 full answers ~2
  allocs a wake late in the run), and each node reports them in one update.
  `--filler-per-node K`: each node holds K allocs before the cycle (W1 full, late: ~200 a
  node, a million in all: the allocs table's lookups walk deeper and colder); after the
  cycle every node reports some of them, two an update (up to 5 updates a node), in random
  order (`old_report_us_per_update`: the listener's CPU per update read, decoded and
  queued, the flush excluded, the collector off: lookups in cold memory, as of a report
  that comes long after its alloc's placement).

Prints one JSON line: CPU microseconds per request (`time.process_time`). Runs on uvloop when
it is installed (as the agent does).

    PYTHONPATH=src .venv/bin/python bench/micro_rpc_server.py [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec


class _Transport:
    """Counts the replies written (and keeps them when `keep`)."""

    def __init__(self, keep: bool = False) -> None:
        self.replies = 0
        self.kept: list[bytes] | None = [] if keep else None

    def write(self, data) -> None:
        self.replies += 1
        if self.kept is not None:
            self.kept.append(data)

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
        self.alloc_updates = None

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()


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
    if args.cycle_rounds:
        out.update(await _cycle(args, store, rpc, job))
    return out


class _ApplyClock:
    """The CPU spent inside `store.apply_batch` (the state writes, not the listener's)."""

    def __init__(self, store) -> None:
        self.spent = 0.0
        inner = store.apply_batch

        def timed(commands):
            t0 = time.process_time()
            try:
                return inner(commands)
            finally:
                self.spent += time.process_time() - t0

        store.apply_batch = timed


async def _until(check) -> None:
    while not check():
        await asyncio.sleep(0)


async def _cycle(args, store, rpc, job) -> dict:
    from bench.simnode import _decode_delta
    from yurt.rpc import decode_reply_raw, frame
    from yurt.rpc.server import _Connection
    from yurt.server.endpoints.allocs import AllocUpdateBatcher
    from yurt.state.commands import NodeRegister, PlanApply
    from yurt.testing.mock import mock_alloc, mock_node

    server = rpc.server
    server.alloc_updates = AllocUpdateBatcher(server, 0.0, server.now_ns)
    nodes = [mock_node() for _ in range(args.nodes)]
    for node in nodes:
        store.apply(NodeRegister(node=node))
    for r in range(0, args.filler_per_node, 10):  # allocs already on the nodes: W1's tables are large
        store.apply(PlanApply(eval_id="e", job=job, updated_at=1, node_allocation={
            node.id: [msgspec.structs.replace(mock_alloc(job, node, index=100_000 + r + i), job=None)
                      for i in range(min(10, args.filler_per_node - r))] for node in nodes}))
    written = _Transport()  # all connections' replies, counted
    conns = {}
    for node in nodes:
        conn, transport = _Connection(rpc), _Transport(keep=True)
        transport.write = lambda data, kept=transport.kept: (kept.append(data), written.write(data))
        conn.connection_made(transport)
        conns[node.id] = (conn, transport)
    index_of = dict.fromkeys(conns, 0)
    known = dict.fromkeys(conns, 0)
    seq = [0]

    def watch_frame(node_id) -> bytes:
        seq[0] += 1
        return frame((seq[0], "GET", f"/v1/internal/node/{node_id}/allocs",
                      {"index": str(index_of[node_id]), "wait": "300s", "delta": "1", "known": str(known[node_id])},
                      None))

    def update_frame(alloc_ids) -> bytes:  # as the sim node's body
        seq[0] += 1
        return frame((seq[0], "PUT", "/v1/internal/allocs/update", None, {"Allocs": [
            {"ID": alloc_id, "ClientStatus": "running", "ClientDescription": "",
             "TaskStates": {"web": {"State": "running", "Failed": False, "Restarts": 0,
                                    "StartedAt": "2026-11-27T08:00:00Z", "Events": []}},
             "DeploymentStatus": None, "NetworkStatus": None} for alloc_id in alloc_ids]}))

    for n, (conn, _) in conns.items():  # the first watch answers at once (index 0); the next one blocks
        conn.data_received(watch_frame(n))
    await _until(lambda: written.replies >= len(conns))
    for n, (conn, t) in conns.items():
        rep = decode_reply_raw(t.kept.pop()[4:])
        index_of[n], known[n] = rep.index, _decode_delta(rep.body).Total
        conn.data_received(watch_frame(n))
    from yurt import gcpolicy

    gcpolicy.relax()  # the server's collector policy (`StateStore.relax_gc`)
    clock = _ApplyClock(store)
    parts = dict.fromkeys(("wake", "requests", "reports"), 0.0)  # listener CPU per phase, commits excluded
    split = dict.fromkeys(("watch_requests", "update_requests"), 0.0)  # `requests`: the watches, the reports
    for r in range(args.cycle_rounds):
        per = args.allocs_per_node  # as the scheduler's plans: the job once, not in each alloc
        plan = PlanApply(eval_id="e", job=job, updated_at=1,
                         node_allocation={node.id: [msgspec.structs.replace(mock_alloc(job, node, index=r * per + i), job=None)
                                                    for i in range(per)] for node in nodes})
        want = written.replies + len(conns)
        applied, t0 = clock.spent, time.process_time()
        store.apply(plan)
        await _until(lambda: written.replies >= want)  # the watches woken and answered
        parts["wake"] += time.process_time() - t0 - (clock.spent - applied)
        frames = []
        for n, (conn, t) in conns.items():  # the nodes' side: read the answer, ask again, report
            rep = decode_reply_raw(t.kept.pop()[4:])
            delta = _decode_delta(rep.body)
            assert rep.status == 200 and len(delta.Changed) == per and delta.Total == known[n] + per, rep
            index_of[n], known[n] = rep.index, delta.Total
            frames.append((conn, watch_frame(n), update_frame([a.ID for a in delta.Changed])))
        want = written.replies + len(conns)
        t0 = time.process_time()
        for conn, watch, _ in frames:
            conn.data_received(watch)
        tw = time.process_time()
        for conn, _, update in frames:
            conn.data_received(update)
        applied, t1 = clock.spent, time.process_time()
        parts["requests"] += t1 - t0
        split["watch_requests"] += tw - t0
        split["update_requests"] += t1 - tw
        await _until(lambda: written.replies >= want)  # the updates acknowledged
        for _ in range(3):  # their commit woke the watches, which wait again
            await asyncio.sleep(0)
        parts["reports"] += time.process_time() - t1 - (clock.spent - applied)
        for _, t in conns.values():
            assert not t.kept[:-1], "a status report answered a watch"
            t.kept.clear()
    placed = args.cycle_rounds * len(conns) * args.allocs_per_node
    out = {"cycle_us_per_alloc": round(sum(parts.values()) / placed * 1e6, 2),
           "cycle_apply_us_per_alloc": round(clock.spent / placed * 1e6, 2),
           **{f"cycle_{k}_us": round(v / placed * 1e6, 2) for k, v in (parts | split).items()}}
    if args.filler_per_node >= 2:  # reports of allocs placed long before, nodes in random order
        import random

        snap = store.snapshot()  # (the filler allocs: the oldest writes of each node's map)
        frames = [(conns[n.id][0], update_frame(snap.alloc_ids_changed_since(n.id, 0)[k:k + 2]))
                  for n in nodes for k in range(0, min(args.filler_per_node - 1, 10), 2)]
        random.Random(7).shuffle(frames)
        gc.disable()  # a collection of this heap costs more than the loop: it would land in one run, not the next
        t0 = time.process_time()
        for conn, update in frames:
            conn.data_received(update)
        out["old_report_us_per_update"] = round((time.process_time() - t0) / (2 * len(frames)) * 1e6, 2)
        gc.enable()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--cycle-rounds", type=int, default=30, help="rounds of the `cycle` kind (0: none)")
    parser.add_argument("--allocs-per-node", type=int, default=1,
                        help="`cycle`: allocs a plan places on each node (W1 full: ~2 per watch answer)")
    parser.add_argument("--filler-per-node", type=int, default=0,
                        help="`cycle`: allocs each node holds before (W1 full, late: ~200 a node, 1M in all)")
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
