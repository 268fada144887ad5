"""The plan applier alone, late in W1: CPU per plan of `PlanApplier.apply` and its parts.

`--nodes` sim-sized nodes first hold `--prefill K` running allocs each on average (K/2..3K/2,
each of another filler job, committed directly: a node late in W1 holds ~140-200 allocs of as
many jobs), in an in-memory state store. Then `--plans` plans, each of a new tiny job placing
`--count` allocs one per node on random nodes (as W1's binpacked plans do), go through the
real `PlanApplier.apply` (fit check, commit, usage carry-over); each plan's `snapshot_index` is
the state it was made on; every `--stale`th plan is checked on nodes another commit changed
after its scheduler read them (their allocs moved).
No scheduler runs: what is measured is the applier's own CPU.

Prints one JSON line: CPU seconds (`time.process_time`, median of `--repeat` passes) of the
applier in all (`apply_s`), of its fit check (`fit_check_s`, `evaluate_plan`), of the usage
carry-over (`carry_s`, the store's listeners) and of the FSM (`fsm_s`, the state's
`apply_command`: not the applier's code), `outside_fsm_s` (the rest: the applier's code and
the store's commit), and us per placed alloc; `gc_s`: the cyclic GC's CPU in the pass (all of
it, measured writes or not). `--check`: after the
run, every node's cached usage must equal a recount of its allocs (exits 1 otherwise).

    PYTHONPATH=src .venv/bin/python bench/micro_plan_apply.py --nodes 5000 --prefill 140 --plans 40 --count 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from random import Random

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NOW = 1_700_000_000 * 10**9


def _timed(parts: dict, name: str, fn):
    def run(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[name] += time.process_time() - start
    return run


def _plan(store, job_id: str, count: int, node_ids: list[str], rng: Random):
    """A plan of a new tiny job: `count` allocs, one per node on random nodes."""
    from bench.sched_one_eval import _tiny_job
    from yurt.state import JobRegister
    from yurt.structs import Plan, evolve
    from yurt.testing.mock import mock_alloc

    store.apply(JobRegister(job=_tiny_job(job_id, count)))
    snap = store.snapshot()
    job = snap.job_by_id("default", job_id)
    chosen = rng.sample(node_ids, count)
    template = evolve(mock_alloc(job, snap.node_by_id(chosen[0])), job=None, eval_id=job_id)
    allocs = {node_id: [evolve(template, id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                               name=f"{job_id}.web[{i}]", node_id=node_id, node_name="")]
              for i, node_id in enumerate(chosen)}
    # made on the state after its job's register, as a scheduler reading it would
    return Plan(eval_id=job_id, priority=job.priority, job=job, node_allocation=allocs, snapshot_index=snap.index)


def _check(store) -> int:
    """Nodes whose cached usage differs from a recount."""
    from yurt.scheduler import usage

    snap = store.snapshot()
    bad = 0
    for node in snap.nodes():
        base = usage.cached_base(node, snap.node_allocs_index(node.id))
        if base is None:
            continue
        fresh = usage.NodeBase(node, snap.allocs_by_node(node.id), ())
        mine = (base.free_cpu, base.free_mem, base.free_disk, base.free_cores, base.ports,
                {k: v for k, v in base.jobs.items() if v})
        theirs = (fresh.free_cpu, fresh.free_mem, fresh.free_disk, fresh.free_cores, fresh.ports,
                  dict(fresh.jobs.items()))
        bad += mine != theirs
    return bad


def run(nodes: int, per_node: int, plans: int, count: int, stale: int, repeat: int, check: bool,
        cache: str | None = None) -> dict:
    from bench.micro_state_writes import _GcClock, _restore_prefill, _save_prefill
    from bench.sched_one_eval import _sim_node, prefill
    from yurt.scheduler import usage
    from yurt.server import plan_apply
    from yurt.server.plan_apply import PlanApplier
    from yurt.state import AllocClientUpdate, AllocUpdate, NodeRegister, StateStore
    from yurt.state import store as store_module
    from yurt.state.store import relax_gc

    rng = Random(5)
    store = StateStore.open(None)
    if cache and os.path.exists(cache):
        _restore_prefill(store, cache, nodes, per_node)
        snap = store.snapshot()
        for node in snap.nodes():  # warm, as `prefill` leaves it
            usage.node_base(node, snap.allocs_by_node(node.id), snap.node_allocs_index(node.id))
        node_ids = [node.id for node in snap.nodes()]
        filled = sum(1 for _ in snap.allocs())
        del snap
    else:
        sim_nodes = [_sim_node(i) for i in range(nodes)]
        store.apply_batch([NodeRegister(node=n) for n in sim_nodes])
        filled = prefill(store, sim_nodes, per_node) if per_node else 0
        node_ids = [n.id for n in sim_nodes]
        if cache:
            _save_prefill(store, cache, nodes, per_node)
    relax_gc()
    applier = PlanApplier(store, lambda: NOW)
    parts = dict.fromkeys(("apply_s", "fit_check_s", "carry_s", "fsm_s"), 0.0)
    plan_apply.evaluate_plan = _timed(parts, "fit_check_s", plan_apply.evaluate_plan)
    store._run_listeners = _timed(parts, "carry_s", store._run_listeners)
    store_module.apply_command = _timed(parts, "fsm_s", store_module.apply_command)
    passes = []
    placed = rejected = 0
    gc_clock = _GcClock()
    for r in range(repeat):
        for key in parts:
            parts[key] = 0.0
        gc_start = gc_clock.total
        for p in range(plans):
            kept = dict(parts)  # the writes outside `apply` are not measured
            # (made right before it is applied, as a scheduler reads the state then plans)
            plan = _plan(store, f"job-{r}-{p}", count, node_ids, rng)
            if stale and p % stale == stale - 1:
                # another writer's allocs land on some of the plan's nodes after its scheduler
                # read them: the fit check finds those nodes at a newer usage version
                other = _plan(store, f"other-{r}-{p}", max(1, count // 10), list(plan.node_allocation), rng)
                store.apply(plan_apply.plan_apply_command(other, plan_apply.PlanResult(
                    node_allocation=other.node_allocation), NOW))
            parts.update(kept)
            start = time.process_time()
            result = applier.apply(plan)
            parts["apply_s"] += time.process_time() - start
            ids = [a.id for allocs in result.node_allocation.values() for a in allocs]
            placed += len(ids)
            rejected += len(result.rejected_nodes or ())
            # the nodes report them running (not measured), as the fleet does between plans
            kept = dict(parts)
            store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status="running") for i in ids],
                                          updated_at=NOW))
            parts.update(kept)
        passes.append(dict(parts, gc_s=gc_clock.total - gc_start))
    gc_clock.stop()
    per_plan = count * plans
    out = {
        "bench": "plan_apply", "nodes": nodes, "existing_allocs": filled, "plans": plans, "count": count,
        "repeat": repeat, "placed": placed, "rejected_nodes": rejected,
        **{k: round(statistics.median(p[k] for p in passes), 4) for k in passes[0]},
    }
    out["outside_fsm_s"] = round(out["apply_s"] - out["fsm_s"], 4)
    out["outside_fsm_us_per_alloc"] = round(out["outside_fsm_s"] / per_plan * 1e6, 2)
    out["apply_us_per_alloc"] = round(out["apply_s"] / per_plan * 1e6, 2)
    out["gc_collections"] = gc_clock.counts  # gen0, gen1, gen2, over all passes
    if check:
        out["check_bad_nodes"] = _check(store)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--prefill", type=int, default=140, metavar="K", help="the nodes first hold K allocs each")
    parser.add_argument("--plans", type=int, default=40)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--stale", type=int, default=4, help="every STALE-th plan meets nodes changed since (0: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="every cached usage must equal a recount")
    parser.add_argument("--prefill-cache", metavar="FILE",
                        help="keep the prefilled state in FILE: built and saved when missing, else restored "
                             "(as micro_state_writes.py --prefill-cache; a file of other sizes is refused)")
    args = parser.parse_args()
    out = run(args.nodes, args.prefill, args.plans, args.count, args.stale, args.repeat, args.check,
              args.prefill_cache)
    print(json.dumps(out))
    if out.get("check_bad_nodes"):
        sys.exit(1)


if __name__ == "__main__":
    main()
