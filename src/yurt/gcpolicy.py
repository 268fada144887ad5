"""How a server process uses Python's cyclic garbage collector.

The server's objects form (almost) no reference cycles: the state's structs and the
scheduler's working objects are freed by reference counting. Measured in a W1 server
(5,000 nodes, 74,000 allocs placed in 70 s, `YURT_GC_STATS`): after `relax()` the young
collections found 0 cyclic garbage objects, yet took 2.7 s of 34 s of CPU (gen0 ~70 ms
each, a gen1 350 ms): they walked the objects made since the previous collection, mostly
alive (new state, the scheduler's caches, evals in flight), several times each.

The policy (`relax()`, once the process holds its state):
- whatever is alive after any collection is frozen (`gc.freeze()`): an object is walked
  by at most one young collection, not once per generation (gen0, gen1, then gen2);
- a full collection first unfreezes (`gc.unfreeze()`), so it walks everything: cyclic
  garbage that formed among frozen objects is found there. Full collections are rare:
  CPython starts one after `threshold[2]` gen1 collections (here 1,000 young ones,
  100M net container allocations) once the objects that survived gen1 collections since
  the last one exceed a quarter of those it kept. Such a walk costs ~0.7 us per tracked
  object (~7 per alloc in a W1 server), so it must stay rare; until it runs, a frozen
  cycle that became garbage holds its memory (none was seen: in that W1 run the young
  collections found 0 garbage, i.e. the server makes no cycles in steady state);
- `paused()` around an evaluation (depth-counted: several scheduler threads share the
  one collector): its many short-lived objects are not walked by a collection that
  starts while they are alive; what is due runs when the last evaluation in flight ends
  (or at the end of any evaluation once twice the gen0 threshold is due). The worker
  ends its pause once it has let go of the eval's scheduler and snapshot: ended while
  they were alive, the due collection walked them, and their objects kept gen0's count
  over the threshold (W1 at 1,000 nodes: 12 young collections, 1.30-1.46 s; ended after
  they are freed: 6, 1.06-1.18 s, each longer).

Not done (reasoned from these figures, not run): a larger gen0 threshold (a collection
walks at least the threshold's worth of young objects, so fewer collections walk about as
much: 200,000 measured no cheaper, see THRESHOLDS); freezing at the threshold instead of
collecting (no young walk, but only full collections would find cycles, and full walks
of a W1 server's frozen objects, 170,000 growing to 1.7 million, at a 25% growth rule
would walk ~8.7 million objects in all, about what its 24 young collections walk: 7.4 s
of 334 s of CPU in W1 full; and a cycle holding a snapshot would pin old state meanwhile).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from contextlib import contextmanager

# gen0 every 100,000 net container allocations (200,000 measured no cheaper per alloc,
# with pauses twice as long), gen1 every 10 of those, a full (unfrozen) collection after
# 100 gen1 collections and the 25% growth rule
THRESHOLDS = (100_000, 10, 100)
STATS_ENV = "YURT_GC_STATS"  # a file: the collector's figures appended as JSON lines
STATS_EVERY_S = 2.0
CENSUS_ENV = "YURT_GC_CENSUS"  # N: every Nth young collection, what it walks by type (into the stats file)

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused():
    """No automatic collection while any `paused()` block runs, in any thread."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            last, resume = _depth == 0, _resume
            if last and resume:
                gc.enable()  # a due collection runs at the next allocation
        if not last and resume:
            collect_if_overdue()


def collect_if_overdue() -> int:
    """With evaluations overlapping the collector may stay paused: run the generation
    that is due once gen0 holds twice its threshold. Returns the generation, or -1."""
    counts, limits = gc.get_count(), gc.get_threshold()
    if not limits[0] or counts[0] <= 2 * limits[0]:
        return -1
    generation = 2 if counts[2] >= limits[2] else 1 if counts[1] >= limits[1] else 0
    gc.collect(generation)
    return generation


def relax() -> None:
    """Install the policy (idempotent). What is alive now is frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if _hook not in gc.callbacks:
        gc.callbacks.append(_hook)
    path = os.environ.get(STATS_ENV)
    if path:
        STATS.path = path
        STATS.census_every = int(os.environ.get(CENSUS_ENV) or 0)


def _hook(phase: str, info: dict) -> None:
    generation = info.get("generation")
    if phase == "start":
        if generation == 2 and not sys.is_finalizing():
            # a full collection walks everything, frozen or not; not the interpreter's last
            # one at exit (seconds at 1,000,000 allocs, for memory the exit frees anyway)
            gc.unfreeze()
        elif STATS.census_every and STATS.gens[0]["n"] % STATS.census_every == 0:
            STATS.census()
        STATS.start()
    else:
        gc.freeze()
        STATS.stop(generation, info.get("collected", 0))


class GcStats:
    """CPU (of the collecting thread), count, collected objects and longest pause per
    generation, since `relax()`; appended to `path` as JSON lines when set."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.census_every = 0
        self.gens = {g: {"n": 0, "cpu_s": 0.0, "collected": 0, "max_ms": 0.0} for g in range(3)}
        self._started = 0.0
        self._written = time.monotonic()

    def start(self) -> None:
        self._started = time.thread_time()

    def stop(self, generation: int, collected: int) -> None:
        spent = time.thread_time() - self._started
        g = self.gens[generation]
        g["n"] += 1
        g["cpu_s"] += spent
        g["collected"] += collected
        g["max_ms"] = max(g["max_ms"], spent * 1000)
        if self.path is not None and time.monotonic() - self._written >= STATS_EVERY_S:
            self.write()

    def census(self) -> None:
        """Diagnostic (`YURT_GC_CENSUS`): the young objects the starting collection will
        walk, by type (containers: with their total length), as one JSON line."""
        counts: dict[str, list[int]] = {}
        for obj in gc.get_objects(0):
            kind = type(obj)
            name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            if kind in (list, tuple, dict):
                inner = next(iter(obj.values() if kind is dict else obj), None) if obj else None
                name = f"{name}[{type(inner).__qualname__}]"
            entry = counts.setdefault(name, [0, 0])
            entry[0] += 1
            if kind in (list, tuple, dict, set, frozenset):
                entry[1] += len(obj)
        top = sorted(counts.items(), key=lambda kv: -kv[1][0])[:40]
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"census": dict(top), "young": sum(c[0] for c in counts.values()),
                                      "process_cpu_s": round(time.process_time(), 2)}) + "\n")
        except OSError:
            self.path = None

    def snapshot(self) -> dict:
        return {
            "process_cpu_s": round(time.process_time(), 2),
            "frozen": gc.get_freeze_count(),
            "threshold": gc.get_threshold(),
            "gens": {g: dict(v, cpu_s=round(v["cpu_s"], 3), max_ms=round(v["max_ms"], 1)) for g, v in self.gens.items()},
        }

    def write(self) -> None:
        self._written = time.monotonic()
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(self.snapshot()) + "\n")
        except OSError:
            self.path = None


STATS = GcStats()
