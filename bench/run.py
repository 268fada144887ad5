"""Run the benchmark scenarios of issue 7 and print one JSON line of figures per scenario.

    .venv/bin/python bench/run.py [W1 W3 ...] [--short]

With no scenario names, runs them all (W1..W7; W7 needs a running dockerd)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import eventloop  # noqa: E402
from bench.figures import emit, log  # noqa: E402

SCENARIOS = {
    "W1": "bench.scenarios.w1_c1m",
    "W2": "bench.scenarios.w2_one_eval",
    "W3": "bench.scenarios.w3_registration_storm",
    "W4": "bench.scenarios.w4_node_loss",
    "W5": "bench.scenarios.w5_latency",
    "W6": "bench.scenarios.w6_watch_fanout",
    "W7": "bench.scenarios.w7_docker",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="W1..W7 (default: all)")
    parser.add_argument("--short", action="store_true", help="the short mode (minutes, for CI)")
    args = parser.parse_args(argv)
    names = [n.upper() for n in args.scenarios] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    failures = 0
    for name in names:
        module = importlib.import_module(SCENARIOS[name])
        started = time.monotonic()
        try:
            figures = eventloop.run(module.run(short=args.short), getattr(module, "EVENT_LOOP", "asyncio"))
        except Exception as exc:  # one broken scenario must not hide the others' figures
            failures += 1
            emit({"scenario": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        figures["bench_wall_s"] = round(time.monotonic() - started, 1)
        figures["short"] = args.short
        emit(figures)
        log(f"{name} done in {figures['bench_wall_s']} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
