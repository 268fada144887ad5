"""W3's scheduler work in one process: system jobs, then nodes register in rounds (by default
the sizes of the register groups a W3 full server wrote: 72, 367, 934, 3,627); after each
round one eval per job on the newest state (each plan committed as the plan applier does),
then one no-op eval per job (everything placed: the newest pending eval after the storm).
CPU seconds (`time.process_time`) of the evals that placed and of the no-op ones.

Besides the bench's plain system jobs (`_tiny_job`, 1 group): with `--mixed`, one job of two
groups, one limited to a datacenter and one with a node-class constraint, some allocs made
terminal and one node made ineligible between rounds (the plans then hold stops and
ignores too). `--digest`: a sha256 of every plan but its random IDs (sched_one_eval's), to
show two trees decide alike.

    PYTHONPATH=$PWD/src python -m bench.micro_system_storm [--jobs 10] [--rounds 72,367,934,3627] [--mixed] [--digest]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import types
from random import Random

from bench import sched_one_eval as one
from yurt.structs import Constraint, evolve


def _jobs(count: int, mixed: bool) -> list:
    jobs = [one._tiny_job(f"sys-{j}", 1, "system") for j in range(count)]
    if mixed and count >= 3:
        two = jobs[0]
        tg = two.task_groups[0]
        jobs[0] = evolve(two, task_groups=[tg, evolve(tg, name="side")])
        jobs[1] = evolve(jobs[1], datacenters=["dc2"])
        jobs[2] = evolve(jobs[2], constraints=[Constraint(l_target="${node.class}", r_target="odd", operand="!=")])
    return jobs


def _nodes(total: int, mixed: bool) -> list:
    nodes = []
    for i in range(total):
        node = one._sim_node(i)
        if mixed:
            from yurt.scheduler.node_class import computed_class
            node = evolve(node, datacenter="dc2" if i % 3 == 0 else node.datacenter,
                          node_class="odd" if i % 5 == 1 else node.node_class)
            node = evolve(node, computed_class=computed_class(node))
        nodes.append(node)
    return nodes


def run(jobs: int, rounds: list[int], mixed: bool) -> dict:
    from yurt.state import AllocClientUpdate, JobRegister, NodeRegister, NodeUpdateEligibility, StateStore
    from yurt.state.commands import AllocUpdate
    store = StateStore.open(None)
    one.relax_gc()
    for job in _jobs(jobs, mixed):
        store.apply(JobRegister(job=job))
    names = [f"sys-{j}" for j in range(jobs)]
    all_nodes = _nodes(sum(rounds), mixed)
    placing: list[float] = []
    placed, first = 0, 0
    for n in rounds:
        store.apply_batch([NodeRegister(node=node) for node in all_nodes[first:first + n]])
        first += n
        for name in names:
            placed += one._process(store, store.snapshot().job_by_id("default", name), placing)
        if mixed:  # some allocs end, one node turns ineligible: the next round sees both
            snap = store.snapshot()
            ended = [AllocUpdate(id=a.id, client_status="failed")
                     for a in sorted(snap.allocs_by_job("default", names[-1]), key=lambda a: a.name + a.node_id)[:7]]
            if ended:
                store.apply(AllocClientUpdate(allocs=ended))
            store.apply(NodeUpdateEligibility(node_id=all_nodes[first - 1].id, eligibility="ineligible"))
    noop: list[float] = []
    for name in names:
        one._process(store, store.snapshot().job_by_id("default", name), noop)
    return {"bench": "system_storm", "jobs": jobs, "rounds": rounds, "mixed": mixed, "placements": placed,
            "placing_evals": len(placing), "placing_cpu_s": round(sum(placing), 3),
            "noop_cpu_ms_median": round(statistics.median(noop) * 1000, 1),
            "noop_cpu_s": round(sum(noop), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rounds", default="72,367,934,3627")
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--digest", action="store_true")
    args = parser.parse_args()
    if args.digest:
        import hashlib
        from yurt.scheduler import placement
        one._DIGEST = hashlib.sha256()
        placement.os = types.SimpleNamespace(urandom=Random(13).randbytes)
    out = run(args.jobs, [int(x) for x in args.rounds.split(",")], args.mixed)
    if one._DIGEST is not None:
        out["plans_sha256"] = one._DIGEST.hexdigest()[:16]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
