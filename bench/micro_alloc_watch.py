"""The client's alloc watch (delta form, over RPC) in one process, without sockets: CPU per wake.

`--nodes` nodes each get one new alloc per round for `--rounds` rounds (W1 at full scale: 200
allocs per node, each node woken ~200 times). After each round every node's watch is answered
by the RPC listener's own handler (`yurt.rpc.server._Handlers._node_alloc_versions`, the
`?delta=1&known=K` form the sim node asks) and framed as the listener frames it; the node
decodes the frame the way the sim node (`bench.simnode.SimNode`) does and checks the count.
Then (unless `--reports 0`) every node reports its new alloc `running` (one client-update
command for all nodes) and its watch is woken by that report, which changes nothing the
node would see: the handler checks and goes back to waiting (`quiet`), as the coroutine
form (`wait_node_allocs`: the in-process link, HTTP) does. The RPC listener's kept watches
are not woken by such a commit at all (`ChangeWatchers.notify(versions_changed=False)`):
`bench/micro_rpc_server.py`'s `cycle_reports_us` shows that path.

Prints one JSON line of CPU seconds (`time.process_time`): `wake_server_s` (handler + frame of
the wakes that answer), `quiet_server_s` (the wakes a status report causes: check + wait again),
`wake_node_s` (decoding), `apply_s` (the state writes: plans and status reports).

    PYTHONPATH=src .venv/bin/python bench/micro_alloc_watch.py [--nodes 200] [--rounds 200]
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


class _Server:
    """What the RPC handlers read of a server for the watch: its state."""

    def __init__(self, state):
        self.state = state


def _run_until_blocked(coro):
    """Run `coro` until it returns (its value, True) or waits ((None, False), closed)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value, True
    coro.close()
    return None, False


async def run(args) -> dict:
    from bench.jobs import mock_job
    from bench.simnode import _decode_delta
    from yurt.rpc import decode_reply_raw, frame
    from yurt.rpc.server import _Handlers
    from yurt.state.commands import AllocClientUpdate, AllocUpdate, JobRegister, PlanApply
    from yurt.state.store import StateStore
    from yurt.structs import Job
    from yurt.testing.mock import mock_alloc, mock_node

    store = StateStore.open(None)
    job = msgspec.convert(mock_job("watch", args.nodes * args.rounds)["Job"], Job)
    store.apply(JobRegister(job=job, submit_time=1))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    nodes = [str(uuid.uuid4()) for _ in range(args.nodes)]
    node_objs = {n: mock_node(id=n) for n in nodes}
    api = _Handlers(_Server(store), None)
    cpu = dict.fromkeys(("wake_server_s", "quiet_server_s", "wake_node_s", "apply_s"), 0.0)
    seen: dict[str, set[str]] = {n: set() for n in nodes}
    index_of = dict.fromkeys(nodes, 0)
    quiet = 0
    for r in range(args.rounds):
        placed = {n: [mock_alloc(job, node, index=r)] for n, node in node_objs.items()}
        t0 = time.process_time()
        store.apply(PlanApply(eval_id="e", job=job, node_allocation=placed, updated_at=1))
        cpu["apply_s"] += time.process_time() - t0
        for n in nodes:
            params = {"index": str(index_of[n]), "wait": "30s", "delta": "1", "known": str(len(seen[n]))}
            t0 = time.process_time()
            (body, meta), answered = _run_until_blocked(api._node_alloc_versions(n, params, None))
            out = frame((r, 200, meta.last_index, body))
            t1 = time.process_time()
            delta = _decode_delta(decode_reply_raw(out[4:]).body)
            known = seen[n]
            known.update(a.ID for a in delta.Changed)
            assert len(known) == delta.Total and delta.Changed, (len(known), delta.Total)
            t2 = time.process_time()
            index_of[n] = meta.last_index
            cpu["wake_server_s"] += t1 - t0
            cpu["wake_node_s"] += t2 - t1
        if not args.reports:
            continue
        updates = [AllocUpdate(id=a.id, client_status="running") for allocs in placed.values() for a in allocs]
        t0 = time.process_time()
        store.apply(AllocClientUpdate(allocs=updates, updated_at=2))
        cpu["apply_s"] += time.process_time() - t0
        for n in nodes:
            params = {"index": str(index_of[n]), "wait": "30s", "delta": "1", "known": str(len(seen[n]))}
            t0 = time.process_time()
            _, answered = _run_until_blocked(api._node_alloc_versions(n, params, None))
            cpu["quiet_server_s"] += time.process_time() - t0
            assert not answered, "a status report answered the watch"
            quiet += 1
    wakes = args.nodes * args.rounds
    per = {"wake_server_s": wakes, "wake_node_s": wakes, "quiet_server_s": quiet or 1}
    return {"nodes": args.nodes, "rounds": args.rounds, "wakes": wakes, "quiet_wakes": quiet,
            **{k: round(v, 3) for k, v in cpu.items()},
            **{k[:-2] + "_us_per_wake": round(v / per[k] * 1e6, 1) for k, v in cpu.items() if k in per}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--reports", type=int, default=1, help="1: a status report wakes each node every round")
    args = parser.parse_args(argv)
    out = asyncio.run(run(args))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
