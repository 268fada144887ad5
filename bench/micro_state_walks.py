"""Count the trie walks of the state writes: per `PlanApply` of `--count` new allocs and per
`AllocClientUpdate` batch, how many `CowMap._writable_path` / `CowMap.get` / bulk merges
(`update`, `merge_with`) each caller makes, and how many trie nodes a write path copied.

Runs `bench/micro_state_fsm.py` (same arguments) with `CowMap`'s methods wrapped by counters
keyed by (command type, calling function:line); prints a table per command type, per command.

    PYTHONPATH=src .venv/bin/python bench/micro_state_walks.py --prefill-cache FILE --rounds 4
"""

from __future__ import annotations

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    from bench import micro_state_fsm
    from yurt.state import cow, store as store_mod

    counts: collections.Counter = collections.Counter()
    commands: collections.Counter = collections.Counter()
    current = ["-"]
    CowMap = cow.CowMap
    orig_get, orig_walk = CowMap.get, CowMap._writable_path
    orig_update, orig_merge_with = CowMap.update, CowMap.merge_with

    def where(depth: int = 2) -> str:
        f = sys._getframe(depth)
        name = f.f_code.co_name
        if f.f_code.co_filename.endswith("cow.py"):  # cow helpers: name their caller too
            g = f.f_back
            name = f"{g.f_code.co_name}:{g.f_lineno}>{name}"
        else:
            name = f"{name}:{f.f_lineno}"
        return name

    def get(self, key, default=None):
        counts[(current[0], "get", where())] += 1
        return orig_get(self, key, default)

    def walk(self, key, gen):
        # copies: nodes on the path not owned by gen before the walk
        fresh = cow._fresh if gen == cow._fresh_gen else set()
        node, copies, depth = self._root, 0, 0
        h = hash(key)
        shift = 0
        while True:
            if id(node) not in fresh:
                copies += 1
            if type(node) is dict:
                break
            node = node[(h >> shift) & cow._MASK]
            shift += cow._BITS
            depth += 1
            if node is None:
                break
        w = where()
        counts[(current[0], "walk", w)] += 1
        counts[(current[0], "copied", w)] += copies
        return orig_walk(self, key, gen)

    def update(self, items, gen):
        counts[(current[0], "update", where())] += 1
        return orig_update(self, items, gen)

    def merge_with(self, entries, combine, gen):
        counts[(current[0], "merge_with", where())] += 1
        return orig_merge_with(self, entries, combine, gen)

    CowMap.get, CowMap._writable_path, CowMap.update, CowMap.merge_with = get, walk, update, merge_with
    orig_apply = store_mod.StateStore.apply_batch

    def apply_batch(self, cmds):
        current[0] = type(cmds[0]).__name__
        commands[current[0]] += len(cmds)
        try:
            return orig_apply(self, cmds)
        finally:
            current[0] = "-"

    store_mod.StateStore.apply_batch = apply_batch
    micro_state_fsm.main()
    for cmd in ("PlanApply", "AllocClientUpdate"):
        n = commands[cmd]
        print(f"\n== {cmd}: {n} commands; per command")
        rows = sorted(((k[1], k[2], v / n) for k, v in counts.items() if k[0] == cmd), key=lambda r: -r[2])
        for kind, w, v in rows:
            if v >= 0.5:
                print(f"  {kind:10s} {v:9.1f}  {w}")


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    main()
