"""The state log's write path in W1, in one process: CPU to encode and to append one command.

Runs W1's state writes at a small size (`bench/micro_state_writes.py`: `--nodes` sim nodes,
`--jobs` jobs of 1,000 through the real scheduler, plan applier and client update batcher)
and keeps the commands the store logged. Then, on those commands (the last `PlanApply` of
1,000 allocs, the `AllocClientUpdate` batches, and one `EvalUpsert` as a small command):

- `encode_us_per_alloc` / `bytes_per_alloc` / `decode_us_per_alloc`: `encode_command` (what
  holds the GIL on the event loop for every commit), the size logged, `decode_command` (replay);
- `append_ms`: `SqliteLog.append` of one such entry into a fresh log (CPU: `process_time`, of
  which `append_sys_ms` in the kernel; SQLite's own work runs with the GIL released), and
  `small_append_us` for the small command (W6's writes are mostly these).

With `--truncate MB`: the truncation after a snapshot instead. A fresh log gets W1's mix of
those entries (each plan followed by 19 client update batches) up to MB megabytes, then
`SqliteLog.save_snapshot` of a one-chunk snapshot at its last index deletes them all, while
another thread appends one small entry every 2 ms (the event loop's commits, which leave the
truncating connection's page cache stale). `truncate_cpu_s` / `truncate_sys_s`: CPU of the
truncating thread (`thread_time`; SQLite's work runs in it, with the GIL released), medians
of `--rounds` rounds (each on a new log).

Medians of `--rounds` rounds. Prints one JSON line.

    PYTHONPATH=src .venv/bin/python bench/micro_log.py [--nodes 500] [--jobs 3] [--rounds 15] [--truncate 400]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def capture(nodes: int, jobs: int) -> list:
    """The commands `StateStore.apply_batch` logged while W1's writes ran at this size."""
    import bench.micro_state_writes as writes
    import yurt.state.store as store_module

    logged: list = []
    encode = store_module.encode_command

    def keep(command):
        logged.append(command)
        return encode(command)

    store_module.encode_command = keep
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            writes.main(["--nodes", str(nodes), "--jobs", str(jobs), "--count", "1000"])
    finally:
        store_module.encode_command = encode
    return logged


def _allocs(command) -> int:
    from yurt.state.commands import AllocClientUpdate, PlanApply

    if isinstance(command, PlanApply):
        return sum(len(v) for v in command.node_allocation.values())
    if isinstance(command, AllocClientUpdate):
        return len(command.allocs)
    return 1


def _cpu(fn, repeat: int) -> tuple[float, float]:
    """(process CPU, of it system CPU) per call, in seconds."""
    t0, s0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat, (resource.getrusage(resource.RUSAGE_SELF).ru_stime - s0) / repeat


def measure(commands: list, rounds: int) -> dict:
    from yurt.state.commands import decode_command, encode_command
    from yurt.state.sqlite import SqliteLog

    out: dict = {}
    for name, group in commands:
        allocs = sum(_allocs(c) for c in group)
        data = [encode_command(c) for c in group]
        enc = [_cpu(lambda: [encode_command(c) for c in group], 3)[0] for _ in range(rounds)]
        dec = [_cpu(lambda: [decode_command(d) for d in data], 3)[0] for _ in range(rounds)]
        with tempfile.TemporaryDirectory(prefix="yurt-micro-log-") as tmp:
            log = SqliteLog(os.path.join(tmp, "state.db"))
            index = [0]

            def append():
                for d in data:
                    index[0] += 1
                    log.append([(index[0], d)])

            repeat = max(1, min(200, 2_000_000 // max(1, sum(map(len, data)))))
            append()  # the file's first pages
            runs = [_cpu(append, repeat) for _ in range(rounds)]
            log.close()
        per = len(group)
        out[name] = {
            "commands": per, "allocs": allocs,
            "bytes_per_alloc": round(sum(map(len, data)) / allocs, 1),
            "encode_us_per_alloc": round(statistics.median(enc) / 3 / allocs * 1e6, 3),
            "decode_us_per_alloc": round(statistics.median(dec) / 3 / allocs * 1e6, 3),
            "append_ms": round(statistics.median(r[0] for r in runs) / per * 1e3, 3),
            "append_sys_ms": round(statistics.median(r[1] for r in runs) / per * 1e3, 3),
        }
    return out


def truncate(plan: bytes, updates: list[bytes], megabytes: int, rounds: int) -> dict:
    from yurt.state.sqlite import SqliteLog

    cpu, sys_cpu, pieces = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="yurt-micro-log-") as tmp:
            log = SqliteLog(os.path.join(tmp, "state.db"))
            index, size = 0, 0
            while size < megabytes << 20:
                for data in [plan] + [updates[i % len(updates)] for i in range(19)]:
                    index += 1
                    log.append([(index, data)])
                    size += len(data)
            snap = index
            stop = threading.Event()
            appended = [index]

            def commits():
                while not stop.wait(0.002):
                    appended[0] += 1
                    log.append([(appended[0], updates[0][:200])])

            other = threading.Thread(target=commits)
            other.start()
            t0, s0 = time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD).ru_stime
            log.save_snapshot(snap, [b"chunk"])
            cpu.append(time.thread_time() - t0)
            sys_cpu.append(resource.getrusage(resource.RUSAGE_THREAD).ru_stime - s0)
            stop.set()
            other.join()
            assert next(log.entries_after(0))[0] == snap + 1
            log.close()
    return {"truncate_mb": megabytes, "truncate_cpu_s": round(statistics.median(cpu), 4),
            "truncate_sys_s": round(statistics.median(sys_cpu), 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--truncate", type=int, metavar="MB", help="measure the truncation of MB megabytes of log")
    args = parser.parse_args(argv)

    from yurt.state.commands import AllocClientUpdate, EvalUpsert, PlanApply

    logged = capture(args.nodes, args.jobs)
    plans = [c for c in logged if isinstance(c, PlanApply) and _allocs(c) >= 1000]
    updates = [c for c in logged if isinstance(c, AllocClientUpdate) and c.allocs]
    small = [c for c in logged if isinstance(c, EvalUpsert)]
    if not plans or not updates or not small:
        raise SystemExit("no 1,000-alloc plan, client update or eval was logged: raise --jobs")
    if args.truncate:
        from yurt.state.commands import encode_command

        found = truncate(encode_command(plans[-1]), [encode_command(u) for u in updates[-4:]], args.truncate,
                         args.rounds)
        found.update(nodes=args.nodes, jobs=args.jobs, rounds=args.rounds)
        print(json.dumps(found))
        return found
    found = measure([("plan", plans[-1:]), ("client_updates", updates[-4:]), ("small", small[-1:])], args.rounds)
    found["small_append_us"] = round(found["small"].pop("append_ms") * 1000, 1)
    found.update(nodes=args.nodes, jobs=args.jobs, rounds=args.rounds)
    print(json.dumps(found))
    return found


if __name__ == "__main__":
    main()
