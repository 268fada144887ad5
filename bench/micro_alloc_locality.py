"""The allocs table's write/read/free CPU at a million allocs: random alloc IDs in a `CowMap`
(the old layout) vs locality-hinted IDs in a `HintedCowMap` (the IDs' last 4 hex digits pick
the top 3 trie levels' slots, so the ~32 IDs a plan builder hands out in a row share a leaf).

A table of `--size` entries (values: one small struct per alloc, made in ID order as a plan
makes them) is filled in plans of `--plan` IDs. Then `--rounds` rounds, each in W1's
pattern: one generation inserts a plan of `--plan` new allocs (`assoc`, as `Txn.put_alloc`),
then `--batches` generations each rewrite `--batch` allocs of the last 1-2 plans (a `get`,
then `_writable_path` + a leaf write, as `Txn.rewrite_allocs` after `alloc_by_id`). Every
generation starts from a snapshot that a reader holds (a scheduler worker's eval) and drops
after the write (the free of the paths the write copied: `Worker.process`'s self time).

Prints one JSON line per run: CPU (`time.process_time`) per insert, per update, per get and
per snapshot free, and the leaves a plan / an update batch touched. Modes alternate, each
in its own process (a run holds ~0.5 GB):

    PYTHONPATH=src .venv/bin/python bench/micro_alloc_locality.py [--size 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
import types
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402

from yurt.scheduler.placement import PlanBuilder  # noqa: E402
from yurt.state import cow  # noqa: E402


class FakeAlloc(msgspec.Struct, gc=False):
    id: str
    node_id: str
    client_status: str = "pending"
    modify_index: int = 0


def plan_ids(mode: str, n: int, rng: random.Random) -> list[str]:
    """`n` IDs as one plan builder hands them out."""
    if mode == "old":
        return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    builder = types.SimpleNamespace(_id_pool=[], _ids=random.Random(rng.getrandbits(64)))
    return [PlanBuilder._alloc_id(builder) for _ in range(n)]


def leaf_count(m: cow.CowMap, keys: list[str]) -> int:
    """How many distinct leaves hold `keys`."""
    slot_hash = m._slot_hash
    seen = set()
    for key in keys:
        node, h, shift = m._root, slot_hash(key), 0
        while type(node) is list:
            node = node[(h >> shift) & cow._MASK]
            shift += cow._BITS
        seen.add(id(node))
    return len(seen)


def run(mode: str, size: int, plan: int, rounds: int, batches: int, batch: int, seed: int) -> dict:
    rng = random.Random(seed)
    empty = cow.CowMap() if mode == "old" else cow.HintedCowMap()
    table = empty
    recent: list[list[str]] = []
    gen = cow.new_generation()
    gc.disable()
    while len(table) < size:
        ids = plan_ids(mode, plan, rng)
        table = table.update(((i, FakeAlloc(i, "n%d" % rng.randrange(5000))) for i in ids), gen)
        recent = [*recent[-1:], ids]
    t_insert = t_update = t_get = t_free = 0.0
    n_insert = n_update = n_get = n_free = 0
    plan_leaves: list[int] = []
    batch_leaves: list[int] = []
    for _ in range(rounds):
        # a plan's inserts, then the client updates of the last plan or two
        ids = plan_ids(mode, plan, rng)
        allocs = [FakeAlloc(i, "n%d" % rng.randrange(5000)) for i in ids]
        snapshot, gen = table, cow.new_generation()
        t0 = time.process_time()
        for alloc in allocs:
            table = table.assoc(alloc.id, alloc, gen)
        t1 = time.process_time()
        snapshot = None
        t2 = time.process_time()
        t_insert += t1 - t0
        t_free += t2 - t1
        n_insert += len(allocs)
        n_free += 1
        plan_leaves.append(leaf_count(table, ids))
        recent = [*recent[-1:], ids]
        pool = recent[0] + recent[1]
        for _ in range(batches):
            picked = rng.sample(pool, batch)
            snapshot, gen = table, cow.new_generation()
            t0 = time.process_time()
            olds = [table.get(i) for i in picked]
            t1 = time.process_time()
            if table._gen != gen:
                table = table._owned(gen)
            walk = table._writable_path
            for alloc_id, old in zip(picked, olds):
                leaf = walk(alloc_id, gen)[0]
                leaf[alloc_id] = msgspec.structs.replace(old, client_status="running", modify_index=gen)
            t2 = time.process_time()
            snapshot = None
            t3 = time.process_time()
            t_get += t1 - t0
            t_update += t2 - t1
            t_free += t3 - t2
            n_get += batch
            n_update += batch
            n_free += 1
            batch_leaves.append(leaf_count(table, picked))
    del snapshot
    return {
        "mode": mode, "size": len(table), "plan": plan, "batch": batch,
        "insert_us": round(t_insert / n_insert * 1e6, 2),
        "update_us": round(t_update / n_update * 1e6, 2),
        "get_us": round(t_get / n_get * 1e6, 2),
        "free_per_gen_us": round(t_free / n_free * 1e6, 1),
        "write_cpu_s": round(t_insert + t_update + t_free, 3),
        "plan_leaves": sorted(plan_leaves)[len(plan_leaves) // 2],
        "batch_leaves": sorted(batch_leaves)[len(batch_leaves) // 2],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--plan", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--batch", type=int, default=175)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", choices=("old", "new"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mode:
        print(json.dumps(run(a.mode, a.size, a.plan, a.rounds, a.batches, a.batch, a.seed)), flush=True)
        return
    args = [sys.executable, os.path.abspath(__file__), "--size", str(a.size), "--plan", str(a.plan),
            "--rounds", str(a.rounds), "--batches", str(a.batches), "--batch", str(a.batch)]
    for i in range(a.runs):
        for mode in ("old", "new"):
            subprocess.run([*args, "--mode", mode, "--seed", str(a.seed + i)], check=True)


if __name__ == "__main__":
    main()
