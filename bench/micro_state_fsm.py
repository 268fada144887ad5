"""The state layer's writes alone at late-W1 scale: CPU of `StateStore.apply` for plans and
client status updates on a big state, without the scheduler, the log or HTTP.

The state is the one `bench/micro_state_writes.py --prefill-cache FILE` saved (e.g. `--nodes
5000 --prefill 700000`). Decoding it takes about a minute, so it is also kept as a pickle of the
decoded tables next to FILE, one per version of the state code (named by a digest of
`yurt/state/{cow,tables}.py`: another tree decodes its own). A pickled trie places keys by their
string hashes, so the script runs itself under `PYTHONHASHSEED=0`.

Each of `--rounds` rounds registers a job (not measured), applies a `PlanApply` of `--count` new
allocs on random nodes (with the plan applier's absent hint, as `PlanApplier` commits), then the
nodes' running reports, decoded as the RPC server decodes them, `--flush` per
`AllocClientUpdate`. Prints one JSON line: CPU seconds (`time.process_time`) of the plan applies
and of the client updates, and per alloc.

    PYTHONPATH=src .venv/bin/python bench/micro_state_fsm.py --prefill-cache FILE [--rounds 48]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import pickle
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402


def _tables(cache: str):
    """The decoded tables of `cache`, through this code version's pickle of them."""
    import yurt.state as state_pkg
    from yurt.state.persist import decode_tables

    digest = hashlib.sha256()
    for name in ("cow.py", "tables.py"):
        with open(os.path.join(os.path.dirname(state_pkg.__file__), name), "rb") as f:
            digest.update(f.read())
    path = f"{cache}.{digest.hexdigest()[:12]}.pkl"
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    with open(cache, "rb") as f:
        saved = msgspec.msgpack.decode(f.read())
    tables = decode_tables(saved["chunks"])
    del saved
    with open(path, "wb") as f:
        pickle.dump(tables, f, protocol=5)
    return tables


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill-cache", required=True, metavar="FILE",
                        help="a state saved by micro_state_writes.py --prefill-cache")
    parser.add_argument("--rounds", type=int, default=48)
    parser.add_argument("--count", type=int, default=1000, help="new allocs per plan")
    parser.add_argument("--flush", type=int, default=150, help="reports per AllocClientUpdate")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from bench.jobs import mock_job
    from bench.micro_state_writes import FakeServer
    from bench.simnode import _BatchStates
    from yurt.rpc.server import _decode_updates
    from yurt.server.endpoints.jobs import register_job
    from yurt.state import fsm_allocs
    from yurt.state.commands import AllocClientUpdate, PlanApply
    from yurt.state.store import StateStore, relax_gc
    from yurt.structs import Job, evolve, generate_uuid

    gc.disable()
    store = StateStore.open(None)
    tables = _tables(args.prefill_cache)
    store._tables = tables
    store._gen = 10**6  # past any generation the pickled tries were written under
    gc.enable()
    relax_gc()
    snap = store.snapshot()
    node_ids = sorted(n.id for n in snap.nodes())
    template = next(iter(snap._t.allocs.values()))
    if snap.alloc_by_id(template.id) is not template:
        raise SystemExit("the pickled state does not answer its own lookups (another PYTHONHASHSEED?)")
    server = FakeServer(store)
    rng = random.Random(args.seed)
    encoder = msgspec.msgpack.Encoder()
    clock = dict(plan_s=0.0, update_s=0.0)
    placed = reported = 0
    ids: list[str] = []
    for k in range(args.rounds):
        job = msgspec.convert(mock_job(f"fsm-{k}", args.count)["Job"], Job)
        register_job(server, job)
        snap = store.snapshot()
        ev = next(e for e in snap.evals_by_job("default", job.id) if e.status == "pending")
        job = snap.job_by_id("default", job.id)
        by_node: dict[str, list] = {}
        ids = []
        for i in range(args.count):
            node_id = rng.choice(node_ids)
            alloc = evolve(template, id=generate_uuid(), name=f"{job.id}.g[{i}]", job=None, job_id=job.id,
                           eval_id=ev.id, node_id=node_id, client_status="pending", task_states=None,
                           create_index=0, modify_index=0, alloc_modify_index=0)
            by_node.setdefault(node_id, []).append(alloc)
            ids.append(alloc.id)
        cmd = PlanApply(eval_id=ev.id, job=job, node_allocation=by_node, updated_at=time.time_ns())
        start = time.process_time()
        fsm_allocs.absent_at(cmd, store.latest_index, set(ids))
        store.apply(cmd)
        clock["plan_s"] += time.process_time() - start
        placed += len(ids)
        bodies = []
        for allocs in by_node.values():
            states = _BatchStates()
            bodies.append(encoder.encode({"Allocs": [
                {"ID": a.id, "ClientStatus": "running", "ClientDescription": "",
                 "TaskStates": states.get(("t",), "running"), "DeploymentStatus": None, "NetworkStatus": None}
                for a in allocs]}))
        pending: dict = {}
        for j, body in enumerate(bodies):
            for update in _decode_updates(body).Allocs:
                pending[update.id] = update
            if len(pending) >= args.flush or j == len(bodies) - 1:
                update_cmd = AllocClientUpdate(allocs=list(pending.values()), evals=None, updated_at=time.time_ns())
                start = time.process_time()
                store.apply(update_cmd)
                clock["update_s"] += time.process_time() - start
                reported += len(pending)
                pending = {}
    snap = store.snapshot()
    out = {
        "allocs_before": len(tables.allocs), "rounds": args.rounds, "placed": placed, "reported": reported,
        "last_round_running": sum(1 for i in ids if snap.alloc_by_id(i).client_status == "running"),
        "plan_s": round(clock["plan_s"], 3), "plan_us_per_alloc": round(clock["plan_s"] / max(placed, 1) * 1e6, 1),
        "update_s": round(clock["update_s"], 3),
        "update_us_per_alloc": round(clock["update_s"] / max(reported, 1) * 1e6, 1),
        "total_s": round(clock["plan_s"] + clock["update_s"], 3),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # the pickled tries hold keys where seed 0 hashes them
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    main()
