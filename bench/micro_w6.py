"""W6 scaled to a rate the machine keeps up with, to compare the server's CPU per write and
per wake between two trees (not a scenario: no goal, no lock needed at the default size).

    PYTHONPATH=$PWD/src python bench/micro_w6.py --watchers 1000 --readers 100 --rate 200 --duration 5

Same load as W6 (`scenarios.w6_watch_fanout.run_fanout`: watchers on 20 nodes, event
readers, a paced writer), but at a rate the server answers without falling behind, so each
write wakes about every watcher of its node and the figures per write compare like with
like. The server's CPU (user + system, from /proc) is read around `run_fanout`; its setup
(connections, 20 registrations) is in it, the same on both trees. `--profile FILE` attaches
py-spy (raw format) to the server for the writes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from bench import eventloop  # noqa: E402
from bench.agentproc import AgentProcess  # noqa: E402
from bench.scenarios.w6_watch_fanout import run_fanout  # noqa: E402

PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--profile", help="py-spy raw output file")
    parser.add_argument("--profile-from", type=float, default=0.0,
                        help="attach py-spy this many seconds after the start (skip the connections' set-up)")
    args = parser.parse_args()
    agent = AgentProcess(mode="server").start()
    spy = None
    try:
        proc = psutil.Process(agent.proc.pid)
        before = proc.cpu_times()
        if args.profile:
            argv = ["sh", "-c", f'sleep {args.profile_from}; exec "$0" "$@"', PY_SPY, "record", "-p",
                    str(agent.proc.pid), "-r", "100", "-f", "raw", "-o", args.profile, "--nonblocking"]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0 = time.process_time()
        figures = eventloop.run(run_fanout(agent.address, args.watchers, args.rate, args.duration, args.readers),
                                "uvloop")
        after = proc.cpu_times()
        user, system = after.user - before.user, after.system - before.system
        writes, wakes = figures["writes"], figures["watcher_wakes"]
        out = {
            "watchers": args.watchers, "readers": args.readers, "rate": args.rate, "writes": writes,
            "wakes_per_write": round(wakes / writes, 1),
            "server_cpu_s": round(user + system, 2), "server_sys_s": round(system, 2),
            "server_ms_per_write": round((user + system) / writes * 1000, 3),
            "bench_cpu_s": round(time.process_time() - cpu0, 2),
            **{k: figures[k] for k in ("write_rate_steady", "wake_after_commit_p99_ms", "write_p99_ms",
                                       "watcher_timeouts", "events_received", "events_expected",
                                       "event_after_commit_p99_ms")},
        }
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        agent.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
