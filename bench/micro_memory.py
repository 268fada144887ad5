"""Bytes per alloc in the server's state, by kind of object, and the cyclic GC's cost at that size.

Builds the state W1 builds, in one process, with `bench/micro_state_writes.py` (SQLite log,
the real scheduler, plans through `PlanApplier.apply`, the nodes' alloc watch answered and
encoded, then every alloc reported running with the TaskStates the sim nodes send, decoded as
the update route decodes them and applied through `AllocUpdateBatcher.flush`). Then:

- RSS: the process's resident set after the nodes registered and after the last job (`rss_mb`,
  `rss_bytes_per_alloc`); with `--tracemalloc`, the Python heap growth too (slower build).
- `by_kind`: a walk of everything the committed `Tables` reach (each object counted once, by
  `sys.getsizeof`), grouped by what holds it: `Allocation`, `TaskState.events`,
  `allocs_by_node` (the trie's leaves and branches), `Allocation.id:str`... with bytes per alloc.
- GC: collections the build triggered, per generation, with their CPU; objects tracked by the
  cyclic GC; the CPU of one full `gc.collect()`, before and after `gc.freeze()`.

    PYTHONPATH=src .venv/bin/python bench/micro_memory.py [--nodes 1000] [--jobs 100] [--count 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GcClock:
    """CPU spent in each generation's collections (a `gc.callbacks` hook)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            gen = info["generation"]
            self.count[gen] += 1
            self.cpu[gen] += time.process_time() - self._start

    def figures(self) -> dict:
        return {f"gen{g}": {"collections": self.count[g], "cpu_s": round(self.cpu[g], 3)} for g in range(3)}


_ATOMIC = (type(None), bool)


def walk_sizes(root, skip_ids: set[int]) -> tuple[Counter, Counter]:
    """Bytes and object counts of everything `root` reaches, each object once, by label."""
    from yurt.state.cow import CowMap

    sizes: Counter = Counter()
    counts: Counter = Counter()
    seen = set(skip_ids)
    stack = [(root, "Tables")]
    getsizeof = sys.getsizeof
    while stack:
        obj, label = stack.pop()
        oid = id(obj)
        if oid in seen or isinstance(obj, _ATOMIC) or isinstance(obj, type):
            continue
        seen.add(oid)
        typ = type(obj)
        if isinstance(obj, msgspec.Struct):
            name = typ.__name__
            sizes[name] += getsizeof(obj)
            counts[name] += 1
            for field in typ.__struct_fields__:
                value = getattr(obj, field)
                if isinstance(value, msgspec.Struct):
                    stack.append((value, value.__class__.__name__))
                else:
                    stack.append((value, f"{name}.{field}"))
            continue
        if typ is CowMap:
            key = f"{label}:trie"
            sizes[key] += getsizeof(obj)
            counts[key] += 1
            stack.append((obj._root, key))
            continue
        key = f"{label}:{typ.__name__}"
        sizes[key] += getsizeof(obj)
        counts[key] += 1
        if isinstance(obj, dict):
            for k, v in obj.items():
                stack.append((k, label + "{k}"))
                stack.append((v, label + "{}"))
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for v in obj:
                stack.append((v, label + "[]"))
        elif hasattr(obj, "__slots__") and not isinstance(obj, (str, bytes, int, float)):
            for slot in typ.__slots__:
                if hasattr(obj, slot):
                    stack.append((getattr(obj, slot), f"{typ.__name__}.{slot}"))
    return sizes, counts


def inspect_state(store, allocs_before_rss: int, gc_clock: GcClock, top: int) -> dict:
    tables = store._tables
    n = len(tables.allocs)
    frozen_before = gc.get_freeze_count()  # frozen by relax_gc() and any full collection since
    gc.collect()
    rss = rss_bytes()
    # module-level objects (e.g. interned constants) are not the state's
    sizes, counts = walk_sizes(tables, set())
    total = sum(sizes.values())
    per = max(n, 1)
    by_kind = [
        {"kind": k, "bytes_per_alloc": round(v / per, 1), "objects_per_alloc": round(counts[k] / per, 3)}
        for k, v in sizes.most_common(top)
    ]
    from yurt.state import store as store_module

    freeze_after_full_collection = getattr(store_module, "freeze_after_full_collection", None)
    hooked = freeze_after_full_collection in gc.callbacks
    if hooked:  # time the full collections with and without a freeze before them
        gc.callbacks.remove(freeze_after_full_collection)
    gc.unfreeze()
    objects = gc.get_objects()
    tracked = len(objects)
    tracked_types = Counter(type(o).__name__ for o in objects).most_common(8)
    del objects
    start = time.process_time()
    gc.collect()
    full_s = time.process_time() - start
    gc.freeze()
    start = time.process_time()
    gc.collect()
    frozen_full_s = time.process_time() - start
    if hooked:
        gc.callbacks.append(freeze_after_full_collection)
    return {
        "allocs": n,
        "rss_mb": round(rss / 2**20, 1),
        "rss_bytes_per_alloc": round((rss - allocs_before_rss) / per),
        "walked_bytes_per_alloc": round(total / per),
        "gc_tracked_objects": tracked,
        "gc_tracked_per_alloc": round(tracked / per, 2),
        "gc_tracked_by_type": dict(tracked_types),
        "gc_frozen_at_end": frozen_before,
        "gc_full_collect_s": round(full_s, 3),
        "gc_full_collect_after_freeze_s": round(frozen_full_s, 4),
        "gc_during_build": gc_clock.figures(),
        "by_kind": by_kind,
    }


def restored_state(store) -> dict:
    """What `decode_tables(encode_tables(...))` (a snapshot write and restore) makes of the state."""
    from yurt.state.persist import decode_tables, encode_tables

    chunks = list(encode_tables(store._tables))
    gc.disable()  # as StateStore._restore
    start = time.process_time()
    tables = decode_tables(chunks)
    cpu = time.process_time() - start
    gc.enable()
    del chunks
    sizes, _counts = walk_sizes(tables, set())
    per = max(len(tables.allocs), 1)
    return {"decode_cpu_s": round(cpu, 2), "walked_bytes_per_alloc": round(sum(sizes.values()) / per),
            "top": [(k, round(v / per, 1)) for k, v in sizes.most_common(12)]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30, help="kinds of objects listed")
    parser.add_argument("--tracemalloc", action="store_true", help="also the Python heap's growth (slow)")
    parser.add_argument("--restore", action="store_true",
                        help="also the state as a snapshot restore rebuilds it: CPU, and bytes per alloc")
    parser.add_argument("--gc-threshold", default="", help="e.g. 50000,20,100: set after relax_gc()")
    args = parser.parse_args(argv)

    from bench import micro_state_writes

    from yurt.state import store as store_module

    relax = store_module.relax_gc
    thresholds = tuple(int(x) for x in args.gc_threshold.split(",")) if args.gc_threshold else None
    gc_clock = GcClock()

    def relax_then_count() -> None:  # the build's collections are counted from here (after the nodes)
        relax()
        if thresholds:
            gc.set_threshold(*thresholds)
        gc.callbacks.append(gc_clock)
        base_rss[0] = rss_bytes()

    store_module.relax_gc = relax_then_count
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    base_rss = [rss_bytes()]
    found: dict = {}

    def inspect(store) -> dict:
        gc.callbacks.remove(gc_clock)
        out = inspect_state(store, base_rss[0], gc_clock, args.top)
        if args.tracemalloc:
            import tracemalloc

            current, peak = tracemalloc.get_traced_memory()
            out["tracemalloc_bytes_per_alloc"] = round(current / max(out["allocs"], 1))
            out["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
            stats = tracemalloc.take_snapshot().statistics("lineno")[: args.top]
            out["tracemalloc_top"] = [
                {"where": f"{s.traceback[0].filename.split('/src/')[-1]}:{s.traceback[0].lineno}",
                 "bytes_per_alloc": round(s.size / max(out["allocs"], 1), 1)} for s in stats]
        if args.restore:
            out["restore"] = restored_state(store)
        found.update(out)
        return out

    result = micro_state_writes.main(
        ["--nodes", str(args.nodes), "--jobs", str(args.jobs), "--count", str(args.count)], inspect=inspect)
    found["build_cpu"] = {k: result[k] for k in ("state_path_s", "schedule_s", "plan_apply_s", "client_update_apply_s")}
    found["base_rss_mb"] = round(base_rss[0] / 2**20, 1)  # after the nodes registered
    found["gc_threshold"] = gc.get_threshold()
    return found


if __name__ == "__main__":
    print(json.dumps(main()))
