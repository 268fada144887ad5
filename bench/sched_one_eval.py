"""One evaluation of a count=1,000 service job on 5,000 mock nodes.

Prints one JSON line: median wall and CPU time of `process(eval)` over a few runs
on a snapshot of the real state store, as the server's scheduler reads it (`--harness`:
the test harness's InMemoryState, as before 2026-11-27; it has no per-node usage index, so
every eval re-reads every node) (the plan is recorded, not applied), the first (cold cache) run, placements, and
nodes scored per placement next to Nomad's limit for that job (max(2, ceil(log2 n)) for
a service job, max(count, 100) with a spread or affinity). `--allocs-per-node 200` adds
1,000,000 existing allocs; `--spread` spreads the nodes over 5 datacenters and gives the
job a `spread { attribute = "${node.datacenter}" }` block.

    .venv/bin/python bench/sched_one_eval.py [--nodes 5000] [--count 1000] [--runs 5] [--spread]

Two more modes measure the scheduler's CPU over a sequence of evaluations on the real
state store (each plan applied as the plan applier commits it), for before/after work:

    --sequence JOBS   W1-like: JOBS tiny service jobs (bench/jobs.py sizes, no ports) of
                      --count each, placed one after another onto --nodes sim-sized nodes
                      (--lose 0.1: then 10% of the nodes go down and one eval per job
                      replaces their allocs, W4-like)
                      (--prefill K: the nodes first hold K allocs each on average, between K/2
                      and 3K/2, of K*3/2 filler jobs, committed directly: what C1M's later
                      evals see on a filling cluster)
    --system JOBS     W3-like: JOBS system jobs, then --nodes nodes register; one eval per job
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from random import Random

from yurt.scheduler import new_scheduler
from yurt.server.plan_apply import PlanApplier
from yurt.state.store import relax_gc
from yurt.scheduler.select import AFFINITY_SPREAD_LIMIT, service_limit
from yurt.structs import (
    Evaluation,
    PlanResult,
    Resources,
    Spread,
    evolve,
    generate_uuid,
)
from yurt.testing.harness import InMemoryState
from yurt.testing.mock import mock_alloc, mock_job, mock_node


class RecordingPlanner:
    """Accepts every plan as committed; records nothing else."""

    def __init__(self) -> None:
        self.plan = None
        self.evals = []

    def submit_plan(self, plan):
        self.plan = plan
        return PlanResult(node_allocation=plan.node_allocation, node_update=plan.node_update), None

    def update_eval(self, ev):
        self.evals.append(ev)

    def create_eval(self, ev):
        self.evals.append(ev)

    def reblock_eval(self, ev):
        self.evals.append(ev)


DATACENTERS = ("dc1", "dc2", "dc3", "dc4", "dc5")


def _filler_job():
    filler = evolve(mock_job(id="filler"), task_groups=[evolve(mock_job().task_groups[0], networks=None)])
    return evolve(filler, task_groups=[evolve(filler.task_groups[0], tasks=[
        evolve(filler.task_groups[0].tasks[0], resources=Resources(cpu=10, memory_mb=10))])])


def build_state(nodes: int, count: int, allocs_per_node: int = 0, spread: bool = False) -> tuple[InMemoryState, object]:
    state = InMemoryState()
    filler = _filler_job()
    template = None
    for n in range(nodes):
        node = state.upsert_node(mock_node(datacenter=DATACENTERS[n % len(DATACENTERS)] if spread else "dc1"))
        for i in range(allocs_per_node):
            if template is None:
                template = mock_alloc(filler, node)
            # cheap copies of one template: only identity and placement differ
            state.upsert_alloc(evolve(template, id=generate_uuid(), node_id=node.id, name=f"filler.web[{i}]"), 1)
    job = mock_job(id="bench")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=count)])
    if spread:
        job = evolve(job, datacenters=list(DATACENTERS), spreads=[Spread(attribute="${node.datacenter}", weight=100)])
    return state, state.upsert_job(job)


def build_store(nodes: int, count: int, allocs_per_node: int = 0, spread: bool = False):
    """`build_state` on the real state store (what the server's scheduler reads): the same
    nodes, job and existing allocs."""
    from yurt.scheduler.node_class import computed_class
    from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
    harness, job = build_state(nodes, count, 0, spread)
    store = StateStore.open(None)
    node_list = harness.nodes()
    store.apply_batch([NodeRegister(node=evolve(n, computed_class=computed_class(n))) for n in node_list])
    if allocs_per_node:
        filler = _filler_job()
        store.apply(JobRegister(job=filler))
        filler = store.snapshot().job_by_id(filler.namespace, filler.id)
        template = evolve(mock_alloc(filler, node_list[0]), job=None)
        for i in range(allocs_per_node):
            store.apply(PlanApply(eval_id=f"fill-{i}", job=filler, updated_at=1, node_allocation={
                n.id: [evolve(template, id=generate_uuid(), node_id=n.id, name=f"filler.web[{i}]")]
                for n in node_list}))
    store.apply(JobRegister(job=job))
    return store, store.snapshot().job_by_id(job.namespace, job.id)


def nomad_limit(nodes: int, count: int, spread: bool) -> int:
    """Nodes Nomad's limit iterator scores per placement for this job."""
    return max(count, AFFINITY_SPREAD_LIMIT) if spread else service_limit(nodes)


def run_once(snapshot, job) -> tuple[float, int, int]:
    planner = RecordingPlanner()
    ev = Evaluation(id=generate_uuid(), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    start, cpu_start = time.perf_counter(), time.process_time()
    sched = new_scheduler("service", snapshot, planner, now_ns=time.time_ns())
    sched.process(ev)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    placed = sum(len(v) for v in planner.plan.node_allocation.values())
    return elapsed, cpu, placed, sched.nodes_scored


SIM_CPU, SIM_MEMORY_MB, SIM_DISK_MB = 8000, 16384, 100_000  # bench/simnode.py
TINY_CPU, TINY_MEMORY_MB, TINY_DISK_MB = 20, 10, 10  # bench/jobs.py


def _sim_node(i: int):
    """A node as bench/fleet.py registers it (its `sim_resources`), with the computed class
    the register endpoint sets."""
    from yurt.scheduler.node_class import computed_class
    from yurt.structs.node import NodeCpuResources, NodeDiskResources, NodeMemoryResources
    node = mock_node(id=str(uuid.UUID(int=_SEQ_RNG.getrandbits(128), version=4)))
    res = evolve(node.node_resources, networks=None, disk=NodeDiskResources(disk_mb=SIM_DISK_MB),
                 cpu=NodeCpuResources(cpu_shares=SIM_CPU, total_cpu_cores=8, reservable_cpu_cores=list(range(8))),
                 memory=NodeMemoryResources(memory_mb=SIM_MEMORY_MB))
    node = evolve(node, name=f"sim-{i}", node_resources=res, reserved_resources=None)
    return evolve(node, computed_class=computed_class(node))


def _tiny_job(job_id: str, count: int, job_type: str = "service"):
    from yurt.structs.job import EphemeralDisk, UpdateStrategy
    job = mock_job(id=job_id)
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], driver="mock_driver", config={"run_for": "1h"},
                  resources=Resources(cpu=TINY_CPU, memory_mb=TINY_MEMORY_MB))
    tg = evolve(tg, count=1 if job_type == "system" else count, tasks=[task], networks=None,
                ephemeral_disk=EphemeralDisk(size_mb=TINY_DISK_MB),
                update=UpdateStrategy(max_parallel=0) if job_type == "service" else None,
                reschedule_policy=None if job_type == "system" else tg.reschedule_policy)
    return evolve(job, type=job_type, datacenters=["*"], constraints=None, task_groups=[tg],
                  priority=100 if job_type == "system" else 50)


_SEQ_RNG = Random(7)
_DIGEST = None  # hashlib object when --digest: every committed plan goes into it


def plan_digest(plan, h) -> None:
    """Add `plan` to the hash `h`: every placed alloc in plan order with its metrics (score
    entries included), but not its random ID; stops and evictions; the plan's annotations.
    Two scheduler trees that decide alike give equal digests for the same sequence."""
    import msgspec
    for node_id in sorted(plan.node_allocation):
        for alloc in plan.node_allocation[node_id]:
            h.update(msgspec.json.encode(evolve(alloc, id="", previous_allocation=alloc.previous_allocation and "p")))
    for table in (plan.node_update, plan.node_preemptions):
        for node_id in sorted(table or {}):
            h.update(node_id.encode() + b"".join(f"{a.name}/{a.desired_status}/{a.desired_description}".encode()
                                                 for a in table[node_id]))
    h.update(msgspec.json.encode(plan.annotations))


def _process(store, job, cpu: list[float]) -> int:
    """One eval of `job` on the store's current snapshot; the plan is committed as is."""
    planner = RecordingPlanner()
    ev = Evaluation(id=str(uuid.UUID(int=_SEQ_RNG.getrandbits(128), version=4)), namespace=job.namespace,
                    priority=job.priority, type=job.type, triggered_by="job-register", job_id=job.id,
                    status="pending")
    snap = store.snapshot()
    start = time.process_time()
    new_scheduler(job.type, snap, planner, now_ns=1_700_000_000 * 10**9).process(ev)
    cpu.append(time.process_time() - start)
    plan = planner.plan
    if plan is None:
        return 0
    if _DIGEST is not None:
        plan_digest(plan, _DIGEST)
    result = PlanApplier(store, lambda: 1_700_000_000 * 10**9).apply(plan)  # as the server commits it
    return sum(len(v) for v in result.node_allocation.values())


def binpack_counts(nodes: int, per_node: int, seed: int = 11) -> list[int]:
    """Allocs per node after `per_node * nodes` tiny placements made as W1's binpack makes
    them: a cursor over the nodes shuffled anew per 1,000 placements (one eval), the best of
    the next `limit` nodes with room (the fullest: binpack), full nodes (cpu) passed over.
    Late in W1 many nodes are full, so windows hold exhausted nodes."""
    from yurt.scheduler.select import service_limit
    rng = Random(seed)
    cap = SIM_CPU // TINY_CPU
    limit = service_limit(nodes)
    counts = [0] * nodes
    order = list(range(nodes))
    cursor = 0
    for placed in range(per_node * nodes):
        if placed % 1000 == 0:
            rng.shuffle(order)
            cursor = 0
        best, seen, visited = -1, 0, 0
        while seen < limit and visited < nodes:
            n = order[cursor]
            cursor = cursor + 1 if cursor + 1 < nodes else 0
            visited += 1
            if counts[n] >= cap:
                continue
            seen += 1
            if best < 0 or counts[n] > counts[best]:
                best = n
        if best < 0:
            break
        counts[best] += 1
    return counts


def prefill(store, nodes: list, per_node: int, binpack: bool = False) -> int:
    """Give node i between per_node/2 and 3*per_node/2 running allocs (per_node on average)
    of filler jobs (tiny, as the bench's), one PlanApply per filler job; `binpack`: as many
    as W1's placements would have put there (`binpack_counts`: many nodes full)."""
    from yurt.state import JobRegister, PlanApply
    from yurt.testing.mock import mock_alloc
    rng = Random(11)
    counts = (binpack_counts(len(nodes), per_node) if binpack
              else [rng.randint(per_node // 2, per_node * 3 // 2) for _ in nodes])
    total = 0
    for k in range(max(counts, default=0)):
        on = [n for n, c in zip(nodes, counts) if c > k]
        store.apply(JobRegister(job=_tiny_job(f"fill-{k}", len(on))))
        job = store.snapshot().job_by_id("default", f"fill-{k}")
        template = evolve(mock_alloc(job, on[0]), job=None, client_status="running", eval_id=f"fill-{k}")
        allocs = {n.id: [evolve(template, id=str(uuid.UUID(int=_SEQ_RNG.getrandbits(128), version=4)),
                                name=f"fill-{k}.web[{i}]", node_id=n.id, node_name=n.name)]
                  for i, n in enumerate(on)}
        store.apply(PlanApply(eval_id=f"fill-{k}", job=job, node_allocation=allocs, updated_at=1))
        total += len(on)
    # a server's node usage cache is warm (the plan applier carries it over commit by commit)
    from yurt.scheduler.usage import node_base
    snap = store.snapshot()
    for n in nodes:
        node_base(snap.node_by_id(n.id), snap.allocs_by_node(n.id), snap.node_allocs_index(n.id))
    return total


def run_sequence(nodes: int, jobs: int, count: int, lose: float = 0.0, per_node: int = 0,
                 binpack: bool = False) -> dict:
    from yurt.state import JobRegister, NodeRegister, NodeUpdateStatus, StateStore
    store = StateStore.open(None)
    sim_nodes = [_sim_node(i) for i in range(nodes)]
    store.apply_batch([NodeRegister(node=n) for n in sim_nodes])
    filled = prefill(store, sim_nodes, per_node, binpack) if per_node else 0
    relax_gc()  # as the server process does after opening its store
    cpu: list[float] = []
    placed = 0
    for j in range(jobs):
        store.apply(JobRegister(job=_tiny_job(f"job-{j}", count)))
        job = store.snapshot().job_by_id("default", f"job-{j}")
        placed += _process(store, job, cpu)
    again: list[float] = []
    for j in range(min(jobs, 10)):  # everything placed: a no-op eval (the reconciler's cost)
        _process(store, store.snapshot().job_by_id("default", f"job-{j}"), again)
    total = sum(cpu)
    out = {"bench": "sched_sequence", "nodes": nodes, "jobs": jobs, "count": count, "existing_allocs": filled,
           "placements": placed,
           "sched_cpu_s": round(total, 3), "us_per_placement": round(total / placed * 1e6, 1) if placed else 0,
           "eval_cpu_ms_median": round(statistics.median(cpu) * 1000, 1),
           "noop_eval_cpu_ms_median": round(statistics.median(again) * 1000, 1)}
    if lose:  # W4-like: that share of the nodes goes down, then one eval per job replaces their allocs
        lost = sim_nodes[: int(nodes * lose)]
        store.apply_batch([NodeUpdateStatus(node_id=n.id, status="down", updated_at=1) for n in lost])
        replace_cpu: list[float] = []
        replaced = sum(_process(store, store.snapshot().job_by_id("default", f"job-{j}"), replace_cpu)
                       for j in range(jobs))
        out.update(lost_nodes=len(lost), replacements=replaced, replace_cpu_s=round(sum(replace_cpu), 3),
                   us_per_replacement=round(sum(replace_cpu) / replaced * 1e6, 1) if replaced else 0)
    return out


def run_system(nodes: int, jobs: int) -> dict:
    from yurt.state import JobRegister, NodeRegister, StateStore
    store = StateStore.open(None)
    relax_gc()  # as the server process does after opening its store
    system_jobs = []
    for j in range(jobs):
        store.apply(JobRegister(job=_tiny_job(f"sys-{j}", 1, "system")))
        system_jobs.append(store.snapshot().job_by_id("default", f"sys-{j}"))
    cpu: list[float] = []
    _ = [_process(store, job, cpu) for job in system_jobs]  # no nodes yet: nothing to place
    cpu.clear()
    store.apply_batch([NodeRegister(node=_sim_node(i)) for i in range(nodes)])
    placed = sum(_process(store, job, cpu) for job in system_jobs)
    again: list[float] = []
    _ = [_process(store, job, again) for job in system_jobs]  # everything placed: a no-op eval per job
    total = sum(cpu)
    return {"bench": "sched_system", "nodes": nodes, "jobs": jobs, "placements": placed,
            "sched_cpu_s": round(total, 3), "us_per_placement": round(total / placed * 1e6, 1) if placed else 0,
            "noop_eval_cpu_ms_median": round(statistics.median(again) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--allocs-per-node", type=int, default=0, help="existing allocs of another job per node")
    parser.add_argument("--spread", action="store_true", help="5 datacenters and a spread block over them")
    parser.add_argument("--harness", action="store_true",
                        help="the test harness's in-memory state instead of the state store (before 2026-11-27)")
    parser.add_argument("--sequence", type=int, default=0, metavar="JOBS", help="W1-like run of JOBS jobs")
    parser.add_argument("--lose", type=float, default=0.0, metavar="SHARE",
                        help="with --sequence: then this share of the nodes goes down (W4-like)")
    parser.add_argument("--prefill", type=int, default=0, metavar="K",
                        help="with --sequence: the nodes first hold K allocs each on average")
    parser.add_argument("--binpack", action="store_true",
                        help="with --prefill: the allocs spread as W1's binpack spreads them (many nodes full)")
    parser.add_argument("--system", type=int, default=0, metavar="JOBS", help="W3-like run of JOBS system jobs")
    parser.add_argument("--digest", action="store_true",
                        help="with --sequence/--system: add a sha256 of every plan (but its random alloc IDs)")
    args = parser.parse_args()
    global _DIGEST
    if args.digest:
        import hashlib
        import types
        from yurt.scheduler import placement
        _DIGEST = hashlib.sha256()
        # alloc IDs seeded too: the order of a node's allocs (by ID) decides which are replaced first
        ids = Random(13)
        placement.os = types.SimpleNamespace(urandom=ids.randbytes)
    if args.sequence or args.system:
        out = (run_sequence(args.nodes, args.sequence, args.count, args.lose, args.prefill, args.binpack) if args.sequence
               else run_system(args.nodes, args.system))
        if _DIGEST is not None:
            out["plans_sha256"] = _DIGEST.hexdigest()[:16]
        print(json.dumps(out))
        return
    if args.harness:
        state, job = build_state(args.nodes, args.count, args.allocs_per_node, args.spread)
    else:
        state, job = build_store(args.nodes, args.count, args.allocs_per_node, args.spread)
    snapshot = state.snapshot()
    times, cpu_times, placed, scored = [], [], 0, 0
    for _ in range(args.runs):
        elapsed, cpu, placed, scored = run_once(snapshot, job)
        times.append(elapsed)
        cpu_times.append(cpu)
    print(json.dumps({
        "bench": "sched_one_eval_spread" if args.spread else "sched_one_eval",
        "nodes": args.nodes,
        "count": args.count,
        "existing_allocs": args.nodes * args.allocs_per_node,
        "state": "harness" if args.harness else "store",
        "runs": args.runs,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "median_cpu_ms": round(statistics.median(cpu_times) * 1000, 1),  # steadier on a busy machine
        "first_run_ms": round(times[0] * 1000, 1),  # cold: node usage cache empty
        "placements": placed,
        "nodes_scored_per_placement": round(scored / placed, 2) if placed else 0,
        "nomad_limit": nomad_limit(args.nodes, args.count, args.spread),
        "placements_per_second": round(placed / statistics.median(times)) if placed else 0,
    }))


if __name__ == "__main__":
    main()
