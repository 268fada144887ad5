"""The client's alloc watch in one process, without HTTP: CPU per wake, full map vs delta.

`--nodes` nodes each get one new alloc per round for `--rounds` rounds (W1 at full scale: 200
allocs per node, each node woken ~200 times). After each round every node is woken and
answered the way the route does, in both forms, and the answer is read the way the sim node
(`bench.simnode.SimNode`) reads it:
- full: the server encodes the node's `{alloc ID: AllocModifyIndex}` map; the node decodes it,
  finds the new entries and asks `allocs/get` for them; the server decodes that body, looks the
  allocs up and encodes them with their jobs; the node decodes them (two requests a wake).
- delta: the server scans the node's map for entries above the node's index and encodes those
  allocs with their jobs and the count; the node decodes them and checks the count (one request).

HTTP costs (about the same per request in both forms) are not counted: the delta form has one
request per wake instead of two. Prints one JSON line of CPU seconds (`time.process_time`).

    PYTHONPATH=src .venv/bin/python bench/micro_alloc_watch.py [--nodes 200] [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)

    from bench.jobs import mock_job
    from bench.simnode import _decode_allocs, _decode_delta, _decode_versions, _encode
    from yurt.http.alloc_delta import changed_alloc_ids
    from yurt.http.alloc_encoding import encode_allocs_with_jobs
    from yurt.http.routes_internal import encoded_alloc_versions
    from yurt.state.commands import JobRegister, PlanApply
    from yurt.state.store import StateStore
    from yurt.structs import Job
    from yurt.testing.mock import mock_alloc, mock_node

    store = StateStore.open(None)
    job = msgspec.convert(mock_job("watch", args.nodes * args.rounds)["Job"], Job)
    store.apply(JobRegister(job=job, submit_time=1))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    nodes = [str(uuid.uuid4()) for _ in range(args.nodes)]
    node_objs = {n: mock_node(id=n) for n in nodes}
    cpu = dict.fromkeys(("full_server_s", "full_node_s", "delta_server_s", "delta_node_s"), 0.0)
    full_seen: dict[str, dict[str, int]] = {n: {} for n in nodes}
    delta_seen: dict[str, dict[str, int]] = {n: {} for n in nodes}
    index_of = dict.fromkeys(nodes, 0)
    decode_ids = msgspec.json.Decoder(dict[str, list[str]]).decode
    for r in range(args.rounds):
        placed = {n: [mock_alloc(job, node, index=r)] for n, node in node_objs.items()}
        store.apply(PlanApply(eval_id="e", job=job, node_allocation=placed, updated_at=1))
        snap = store.snapshot()
        for n in nodes:
            # full: map, then a pull of the new allocs
            t0 = time.process_time()
            answer = encoded_alloc_versions(snap, n)
            t1 = time.process_time()
            versions = _decode_versions(answer).Allocs or {}
            seen = full_seen[n]
            pull = [aid for aid, i in versions.items() - seen.items() if i > seen.get(aid, -1)]
            body = _encode({"AllocIDs": pull})
            full_seen[n] = versions
            t2 = time.process_time()
            ids = decode_ids(body)["AllocIDs"]
            pulled = encode_allocs_with_jobs(snap, [a for a in (snap.alloc_by_id(i) for i in ids) if a is not None])
            t3 = time.process_time()
            _decode_allocs(pulled)
            t4 = time.process_time()
            cpu["full_server_s"] += (t1 - t0) + (t3 - t2)
            cpu["full_node_s"] += (t2 - t1) + (t4 - t3)
            # delta: the changed allocs in full and the count
            since = index_of[n]
            t0 = time.process_time()
            node_versions = snap.alloc_versions_by_node(n)
            changed = encode_allocs_with_jobs(snap, [snap.alloc_by_id(i) for i in changed_alloc_ids(node_versions, since)])
            answer = b'{"Total":%d,"Changed":%s}' % (len(node_versions), changed)
            t1 = time.process_time()
            delta = _decode_delta(answer)
            seen = delta_seen[n]
            added = sum(1 for a in delta.Changed if a.ID not in seen)
            assert len(seen) + added == delta.Total
            for a in delta.Changed:
                seen[a.ID] = a.AllocModifyIndex
            t2 = time.process_time()
            index_of[n] = snap.table_index("allocs:node:" + n)
            cpu["delta_server_s"] += t1 - t0
            cpu["delta_node_s"] += t2 - t1
    wakes = args.nodes * args.rounds
    out = {"nodes": args.nodes, "rounds": args.rounds, "wakes": wakes, **{k: round(v, 3) for k, v in cpu.items()},
           **{k[:-2] + "_us_per_wake": round(v / wakes * 1e6, 1) for k, v in cpu.items()}}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
