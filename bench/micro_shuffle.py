"""The scheduler's per-eval shuffle of its candidates (`nodetable.shuffle`) against the
draw-per-step shuffle it replaced (`Random.shuffle`'s draws inlined, a bit_length per
step: main before sc6),
interleaved in one process: CPU per shuffle of `--nodes` (medians of `--runs` rounds of 50).

    PYTHONPATH=src .venv/bin/python bench/micro_shuffle.py [--nodes 5000] [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from random import Random

from yurt.scheduler.nodetable import shuffle


def draw_per_step(x: list, rng) -> None:
    """main's `nodetable.shuffle` before sc6: one getrandbits call per draw."""
    getrandbits = rng.getrandbits
    for i in reversed(range(1, len(x))):
        n = i + 1
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        x[i], x[j] = x[j], x[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times = {"per_step": [], "runs_of_k": []}
    for r in range(args.runs):
        for name, fn in (("per_step", draw_per_step), ("runs_of_k", shuffle)):
            start = time.process_time()
            for s in range(50):
                fn(list(range(args.nodes)), Random(r * 1000 + s))
            times[name].append((time.process_time() - start) / 50)
    out = {k: round(statistics.median(v) * 1e6, 1) for k, v in times.items()}
    print(json.dumps({"bench": "micro_shuffle", "nodes": args.nodes, "us_per_shuffle": out}))


if __name__ == "__main__":
    main()
