"""The server's state-write path of W1 in one process, without HTTP: CPU per phase.

A SQLite-backed `StateStore` (as the agent opens it) with `--nodes` sim nodes (the fleet's
node template) gets `--jobs` service jobs of `--count` tiny mock tasks, registered the way
`PUT /v1/jobs` does. Each job's eval runs the real scheduler; its plans go through the real
`PlanApplier.apply`. After each plan every node that got allocs is "woken": the body of
`GET /v1/internal/node/:id/allocs` is computed and encoded, and its new allocs are encoded
as `PUT /v1/internal/allocs/get` answers them. Then the nodes report them running, the way
the sim fleet does (JSON -> `AllocUpdate` -> `AllocUpdateBatcher.flush`, `--flush` updates a
command), and each node touched by a flush is woken again.

Prints one JSON line: CPU seconds (`time.process_time`) per phase, and per alloc. The
scheduler's own CPU is reported apart (`schedule_s`) and not in `state_path_s`.

    PYTHONPATH=src .venv/bin/python bench/micro_state_writes.py [--nodes 500] [--jobs 60] [--count 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402

from yurt.structs import Job, Node  # noqa: E402


class _Heartbeats:
    def reset(self, node_id: str) -> float:
        return 10.0


class FakeServer:
    """What the endpoints read of a server."""

    def __init__(self, state) -> None:
        self.state = state
        self.heartbeats = _Heartbeats()

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()


class _GcClock:
    """CPU spent in the cyclic GC (all phases; charged to whichever phase allocated)."""

    def __init__(self) -> None:
        self.total, self.counts, self._start = 0.0, [0, 0, 0], 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.total += time.process_time() - self._start
            self.counts[info["generation"]] += 1

    def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)


class Planner:
    def __init__(self, applier, store, clock: dict) -> None:
        self.applier, self.store, self.clock = applier, store, clock
        self.results = []

    def submit_plan(self, plan):
        start = time.process_time()
        result = self.applier.apply(plan)
        self.clock["plan_apply_s"] += time.process_time() - start
        self.results.append(result)
        return result, (self.store.snapshot() if result.refresh_index else None)

    def _upsert(self, ev):
        from yurt.state.commands import EvalUpsert

        start = time.process_time()
        self.store.apply(EvalUpsert(evals=[ev]))
        self.clock["eval_upsert_s"] += time.process_time() - start

    update_eval = create_eval = reblock_eval = _upsert


def _time_store_parts(store) -> dict:
    """Split the CPU of `StateStore.apply` (within the phases above) into the FSM
    (`fsm_s`, of which `index_new_allocs_s` writes a plan's new allocs into the secondary
    indexes), encoding commands for the log (`encode_s`) and appending them (`log_append_s`);
    and the plan applier's fit check (`fit_check_s`) and the usage carry-over after every
    commit (`carry_s`: plans and client updates)."""
    import yurt.state.store as store_module

    parts = dict.fromkeys(("fsm_s", "encode_s", "log_append_s"), 0.0)

    def timed(name, fn):
        def run(*args):
            start = time.process_time()
            try:
                return fn(*args)
            finally:
                parts[name] += time.process_time() - start
        return run

    import yurt.server.plan_apply as plan_apply_module
    import yurt.state.txn as txn_module

    parts.update(dict.fromkeys(("fit_check_s", "carry_s", "index_new_allocs_s"), 0.0))
    plan_apply_module.evaluate_plan = timed("fit_check_s", plan_apply_module.evaluate_plan)
    store._run_listeners = timed("carry_s", store._run_listeners)  # the listener: plan_apply.UsageCarrier
    txn_module.Txn.index_new_allocs = timed("index_new_allocs_s", txn_module.Txn.index_new_allocs)
    if hasattr(txn_module.Txn, "_fold_alloc_tail"):  # new alloc IDs into allocs_by_prefix, in batches
        parts["prefix_fold_s"] = 0.0
        txn_module.Txn._fold_alloc_tail = timed("prefix_fold_s", txn_module.Txn._fold_alloc_tail)
    store_module.apply_command = timed("fsm_s", store_module.apply_command)
    store_module.encode_command = timed("encode_s", store_module.encode_command)
    if store._backend is not None:
        store._backend.append = timed("log_append_s", store._backend.append)
    return parts


def register_sim_nodes(server, count: int) -> list[str]:
    """Register `count` ready nodes shaped as the fleet's (`sim_node_template`); their IDs."""
    from bench.fleet import sim_node_template
    from yurt.server.endpoints.nodes import register_node

    template = sim_node_template()
    node_ids = []
    for i in range(count):
        node = msgspec.convert(dict(template, ID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()), Name=f"sim-{i}",
                                    Status="ready"), Node)
        register_node(server, node)
        node_ids.append(node.id)
    return node_ids


def _prefill(server, node_ids: list[str], total: int, count: int) -> None:
    """Put `total` running allocs (jobs of `count`, spread round-robin over the nodes) in the
    state, not measured: one job goes through the real scheduler, the others' allocs are
    copies of its allocs committed as `PlanApply` commands, then reported running."""
    from bench.jobs import mock_job
    from yurt.scheduler import new_scheduler
    from yurt.server.endpoints.jobs import register_job
    from yurt.server.plan_apply import PlanApplier
    from yurt.state.commands import AllocClientUpdate, AllocUpdate, PlanApply
    from yurt.structs import TaskState, evolve, generate_uuid

    store = server.state
    applier = PlanApplier(store, FakeServer.now_ns)
    backend, store._backend = store._backend, None  # no log writes: only the state matters here
    try:
        template = None
        slot = 0
        running = {"t": TaskState(state="running")}
        for j in range((total + count - 1) // count):
            n = min(count, total - j * count)
            job = msgspec.convert(mock_job(f"prefill-{j}", n)["Job"], Job)
            register_job(server, job)
            snap = store.snapshot()
            ev = next(e for e in snap.evals_by_job("default", job.id) if e.status == "pending")
            if template is None:
                planner = Planner(applier, store, dict(plan_apply_s=0.0, eval_upsert_s=0.0))
                new_scheduler(ev.type, snap, planner, now_ns=time.time_ns(), config=snap.scheduler_config()).process(ev)
                template = next(a for r in planner.results for allocs in r.node_allocation.values() for a in allocs)
                ids = [a.id for r in planner.results for allocs in r.node_allocation.values() for a in allocs]
            else:
                stored = snap.job_by_id("default", job.id)
                by_node: dict[str, list] = {}
                ids = []
                for k in range(n):
                    node_id = node_ids[slot % len(node_ids)]
                    slot += 1
                    alloc = evolve(template, id=generate_uuid(), name=f"{job.id}.g[{k}]", job_id=job.id, job=None,
                                   eval_id=ev.id, node_id=node_id, create_index=0, modify_index=0,
                                   alloc_modify_index=0)
                    by_node.setdefault(node_id, []).append(alloc)
                    ids.append(alloc.id)
                store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation=by_node, updated_at=time.time_ns()))
            for start in range(0, len(ids), 1000):
                store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status="running", task_states=running)
                                                      for i in ids[start:start + 1000]], updated_at=time.time_ns()))
    finally:
        store._backend = backend


def _save_prefill(store, path: str, nodes: int, prefill: int) -> None:
    """Write the state (nodes and prefilled allocs) as snapshot chunks, with the sizes it was made for."""
    from yurt.state.persist import encode_tables

    chunks = list(encode_tables(store._tables))
    with open(path, "wb") as out:
        out.write(msgspec.msgpack.encode({"nodes": nodes, "prefill": prefill, "chunks": chunks}))


def _restore_prefill(store, path: str, nodes: int, prefill: int) -> None:
    """Put the state saved by `_save_prefill` into `store` (as if it had just snapshotted it)."""
    from yurt.state.persist import decode_tables

    with open(path, "rb") as f:
        saved = msgspec.msgpack.decode(f.read())
    if (saved["nodes"], saved["prefill"]) != (nodes, prefill):
        raise SystemExit(f"--prefill-cache {path} holds --nodes {saved['nodes']} --prefill {saved['prefill']}, "
                         f"not --nodes {nodes} --prefill {prefill}")
    tables = decode_tables(saved["chunks"])
    store._tables = tables
    store._snapshot_index = tables.index


def main(argv: list[str] | None = None, inspect=None) -> dict:
    """`inspect(store)`, if given, runs on the built state before the store is closed;
    what it returns goes into the output under `inspect`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--flush", type=int, default=250, help="client updates per AllocClientUpdate command")
    parser.add_argument("--memory", action="store_true", help="in-memory store (no SQLite log)")
    parser.add_argument("--prefill", type=int, default=0,
                        help="allocs (running, in jobs of --count) put in the state before the measured jobs")
    parser.add_argument("--prefill-cache", metavar="FILE",
                        help="keep the prefilled state in FILE (a state snapshot): built and saved when FILE is "
                             "missing, else restored from it (seconds instead of minutes); FILE names --nodes and "
                             "--prefill, a cache of another size is refused")
    args = parser.parse_args(argv)

    from bench.jobs import mock_job
    from bench.simnode import task_states
    from yurt.http.alloc_encoding import encode_allocs_with_jobs
    from yurt.http import routes_internal
    from yurt.http.wire import convert
    from yurt.scheduler import new_scheduler
    from yurt.server.endpoints.allocs import AllocUpdateBatcher
    from yurt.server.endpoints.jobs import register_job
    from yurt.server.plan_apply import PlanApplier
    from yurt.state.commands import AllocUpdate
    from yurt.state.store import StateStore, relax_gc

    tmp = tempfile.mkdtemp(prefix="yurt-micro-state-")
    store = StateStore.open(None if args.memory else tmp)
    server = FakeServer(store)
    if args.prefill_cache and os.path.exists(args.prefill_cache):
        _restore_prefill(store, args.prefill_cache, args.nodes, args.prefill)
    else:
        node_ids = register_sim_nodes(server, args.nodes)
        if args.prefill:
            _prefill(server, node_ids, args.prefill, args.count)
        if args.prefill_cache:
            _save_prefill(store, args.prefill_cache, args.nodes, args.prefill)
    store_clock = _time_store_parts(store)
    relax_gc()
    gc_clock = _GcClock()
    applier = PlanApplier(store, FakeServer.now_ns)
    batcher = AllocUpdateBatcher(server, 0.05, FakeServer.now_ns)
    clock = dict.fromkeys(("plan_apply_s", "eval_upsert_s", "job_register_s", "schedule_s", "versions_s",
                           "allocs_get_s", "client_update_decode_s", "client_update_apply_s"), 0.0)
    versions_calls = 0
    placed = 0
    encoder = msgspec.json.Encoder()

    def versions_answer(snap, node_id):  # what the route sends (encoded JSON)
        encoded = getattr(routes_internal, "encoded_alloc_versions", None)
        if encoded is not None:
            return encoded(snap, node_id)
        return encoder.encode(routes_internal.alloc_versions_body(snap, node_id))

    wall = time.perf_counter()
    for j in range(args.jobs):
        body = mock_job(f"job-{j}", args.count)
        job = msgspec.convert(body["Job"], Job)
        start = time.process_time()
        register_job(server, job)
        clock["job_register_s"] += time.process_time() - start
        snap = store.snapshot()
        ev = next(e for e in snap.evals_by_job("default", job.id) if e.status == "pending")
        planner = Planner(applier, store, clock)
        start = time.process_time()
        apply_before = clock["plan_apply_s"] + clock["eval_upsert_s"]
        new_scheduler(ev.type, snap, planner, now_ns=time.time_ns(), config=snap.scheduler_config()).process(ev)
        clock["schedule_s"] += time.process_time() - start - (clock["plan_apply_s"] + clock["eval_upsert_s"]
                                                              - apply_before)
        new_by_node: dict[str, list[str]] = {}
        for result in planner.results:
            for node_id, allocs in result.node_allocation.items():
                new_by_node.setdefault(node_id, []).extend(a.id for a in allocs)
        # the woken nodes read their version maps, then pull the new allocs
        start = time.process_time()
        for node_id in new_by_node:
            versions_answer(store.snapshot(), node_id)
            versions_calls += 1
        clock["versions_s"] += time.process_time() - start
        start = time.process_time()
        for node_id, ids in new_by_node.items():
            snap = store.snapshot()
            encode_allocs_with_jobs(snap, [a for a in (snap.alloc_by_id(i) for i in ids) if a is not None])
        clock["allocs_get_s"] += time.process_time() - start
        # each node reports its new allocs running (the fleet's JSON), flushed in batches
        names = ["t"]
        pending = []
        for node_id, ids in new_by_node.items():
            states = task_states(names, "running")
            raw = encoder.encode({"Allocs": [{"ID": i, "ClientStatus": "running", "ClientDescription": "",
                                              "TaskStates": states, "DeploymentStatus": None,
                                              "NetworkStatus": None} for i in ids]})
            pending.append((node_id, raw))
        batch_nodes: list[str] = []
        for k, (node_id, raw) in enumerate(pending):
            start = time.process_time()
            direct = getattr(routes_internal, "decode_alloc_updates", None)  # as the route reads it
            updates = direct(raw) if direct is not None else None
            if updates is None:
                updates = convert(msgspec.json.decode(raw)["Allocs"], list[AllocUpdate], "alloc updates")
            clock["client_update_decode_s"] += time.process_time() - start
            for update in updates:
                batcher._pending[update.id] = update
            batch_nodes.append(node_id)
            if len(batcher._pending) >= args.flush or k == len(pending) - 1:
                start = time.process_time()
                batcher.flush()
                clock["client_update_apply_s"] += time.process_time() - start
                start = time.process_time()
                for woken in batch_nodes:
                    versions_answer(store.snapshot(), woken)
                    versions_calls += 1
                clock["versions_s"] += time.process_time() - start
                batch_nodes = []
        placed += sum(len(v) for v in new_by_node.values())
    wall = time.perf_counter() - wall
    gc_clock.stop()
    snap = store.snapshot()
    running = sum(1 for a in snap.allocs() if a.client_status == "running")
    del snap
    inspected = inspect(store) if inspect is not None else None
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    gc.collect()
    state_path = sum(v for k, v in clock.items() if k not in ("schedule_s", "job_register_s"))
    out = {
        "nodes": args.nodes, "prefill": args.prefill, "jobs": args.jobs, "count": args.count, "placed": placed, "running": running,
        "versions_calls": versions_calls,
        **{k: round(v, 3) for k, v in clock.items()},
        "state_path_s": round(state_path, 3),
        "state_path_us_per_alloc": round(state_path / max(placed, 1) * 1e6, 1),
        **{k: round(v, 3) for k, v in store_clock.items()},
        "gc_s": round(gc_clock.total, 3), "gc_collections": gc_clock.counts,
        "wall_s": round(wall, 1),
    }
    if inspected is not None:
        out["inspect"] = inspected
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
