"""One background state snapshot of a large state: what it costs the serving process, thread vs fork.

Builds the state W1 builds at `--allocs` running allocs (jobs of 1,000, spread over `--nodes` sim
nodes; `bench/micro_state_writes.py`'s prefill: one job through the real scheduler, the others
copies of its allocs as `PlanApply` commands, all reported running) in a SQLite-backed
`StateStore`. Then, for each mode in turn (`--runs` rounds of thread, fork), it starts one
background snapshot (`StateStore._maybe_snapshot`, as `apply_batch` does) and, while it runs,
the main thread keeps committing small commands (`NodeUpdateStatus` of one node, one SQLite
log append each; `--busy python` does fixed Python work instead). Per run:

- `commits_per_s` / `max_gap_ms`: the busy main thread's throughput while the snapshot runs,
  and the longest time between two of its steps (the stall the serving loop would see);
- `parent_cpu_s`: the CPU the process spent besides the busy thread's own (`process_time`
  minus the main thread's `thread_time`): the snapshot's cost on the serving process, split
  into user time (`parent_user_s`: Python and SQLite code; what can hold the GIL) and system
  time (`parent_sys_s`: pipe reads, SQLite's file writes; the GIL is released);
- `child_cpu_s`, `child_maxrss_mb`, `child_minflt_mb` (fork mode): the child's CPU, peak RSS
  (the state's pages it touched count too) and page faults x 4 KiB (its private copies);
- `parent_minflt_mb`: the parent's page faults x 4 KiB during the snapshot (copy-on-write
  copies in fork mode, plus whatever the busy loop allocates in both modes); `rss_mb` before.

With `--codec`, also the CPU of `persist` itself on this state, in this process: encoding as
the thread path does (`encode_s`, a copy of each alloc without its job), decoding it as a
restore does (`decode_s`), and encoding that decoded copy as the forked child does
(`encode_private_s`, the job cleared in place).

Prints one JSON line with every run and the medians per mode.

    PYTHONPATH=src .venv/bin/python bench/micro_snapshot.py [--allocs 300000] [--nodes 5000] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


def measure(store, node_ids: list[str], mode: str, busy: str, baseline_s: float = 0.0) -> dict:
    from yurt.state.commands import NodeUpdateStatus

    store.fork_snapshots = mode == "fork"
    work = list(range(2000))
    step = 0

    def one_step() -> None:
        nonlocal step
        step += 1
        if busy == "commit":
            store.apply(NodeUpdateStatus(node_id=node_ids[step % len(node_ids)], status="ready", updated_at=step))
        else:
            sum(x * x for x in work)

    rss = _rss_mb()
    usage, usage_main = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
    faults = usage.ru_minflt
    cpu, own = time.process_time(), time.thread_time()
    wall = time.perf_counter()
    if mode == "none":  # the busy loop alone for as long: the baseline
        stop = time.perf_counter() + baseline_s
        thread = threading.Thread(target=lambda: time.sleep(max(0.0, stop - time.perf_counter())))
        thread.start()
    else:
        _start(store)
        thread = store._snapshot_thread
    assert thread is not None, "no snapshot started"
    steps, last, max_gap = 0, time.perf_counter(), 0.0
    while thread.is_alive():
        one_step()
        steps += 1
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
    wall = time.perf_counter() - wall
    own = time.thread_time() - own
    cpu = time.process_time() - cpu
    thread.join()
    after, after_main = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
    faults = after.ru_minflt - faults
    # the other threads' user CPU (runs Python, under the GIL) and system CPU (syscalls: pipe, SQLite I/O)
    others_user = (after.ru_utime - usage.ru_utime) - (after_main.ru_utime - usage_main.ru_utime)
    others_sys = (after.ru_stime - usage.ru_stime) - (after_main.ru_stime - usage_main.ru_stime)
    out = {"mode": mode, "wall_s": round(wall, 2), "steps": steps, "commits_per_s": round(steps / wall, 1),
           "max_gap_ms": round(max_gap * 1000, 1), "parent_cpu_s": round(cpu - own, 2),
           "parent_user_s": round(others_user, 2), "parent_sys_s": round(others_sys, 2),
           "busy_thread_cpu_s": round(own, 2), "parent_minflt_mb": round(faults * _PAGE_MB, 1),
           "rss_mb": round(rss, 1)}
    child = store.last_snapshot_child if mode == "fork" else None
    if child is not None and child.rusage is not None:
        ru = child.rusage
        out.update(child_exit=child.exit_code, fork_ms=round(child.fork_s * 1000, 1), child_cpu_s=round(ru.ru_utime + ru.ru_stime, 2),
                   child_maxrss_mb=round(ru.ru_maxrss / 1024, 1), child_minflt_mb=round(ru.ru_minflt * _PAGE_MB, 1))
    backend = store._backend
    found = backend.latest_snapshot()
    out["snapshot_index"] = found[0] if found else 0
    return out


def _start(store) -> None:
    """A background snapshot now (what `_maybe_snapshot` does when the log is long enough)."""
    store.snapshot_every = 1
    store._snapshot_index = 0
    store._maybe_snapshot()
    store.snapshot_every = 1 << 62


def codec(store) -> dict:
    import gc

    from yurt.state.persist import decode_tables, encode_tables

    gc.disable()
    try:
        start = time.process_time()
        chunks = list(encode_tables(store._tables))
        encode_s = time.process_time() - start
        start = time.process_time()
        copy = decode_tables(chunks)
        decode_s = time.process_time() - start
        start = time.process_time()
        private = list(encode_tables(copy, private=True))
        encode_private_s = time.process_time() - start
    finally:
        gc.enable()
    assert private == chunks
    return {"encode_s": round(encode_s, 2), "decode_s": round(decode_s, 2),
            "encode_private_s": round(encode_private_s, 2), "snapshot_mb": round(sum(map(len, chunks)) / 2**20, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocs", type=int, default=300_000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--modes", default="thread,fork", help="thread, fork, none (no snapshot: the baseline)")
    parser.add_argument("--busy", choices=("commit", "python"), default="commit")
    parser.add_argument("--codec", action="store_true", help="also persist's encode/decode CPU")
    args = parser.parse_args(argv)

    from bench import micro_state_writes

    found: dict = {}

    def inspect(store) -> dict:
        # build done (prefill skipped the log): measure on the store as the server holds it
        node_ids = [n.id for n in store.snapshot().nodes()]
        found["allocs"] = len(store.snapshot().allocs())
        runs = []
        for _ in range(args.runs):
            for mode in args.modes.split(","):
                # "none": no snapshot, the busy loop alone for as long as the last thread-mode snapshot
                last = next((r["wall_s"] for r in reversed(runs) if r["mode"] == "thread"), 10.0)
                runs.append(measure(store, node_ids, mode, args.busy, last))
                print(json.dumps(runs[-1]), file=sys.stderr)
        found["runs"] = runs
        if args.codec:
            found["codec"] = codec(store)
        return {}

    start = time.process_time()
    micro_state_writes.main(["--nodes", str(args.nodes), "--jobs", "0", "--count", "1000",
                             "--prefill", str(args.allocs)], inspect=inspect)
    found["build_and_runs_cpu_s"] = round(time.process_time() - start, 1)
    medians = {}
    for mode in args.modes.split(","):
        rows = [r for r in found["runs"] if r["mode"] == mode]
        medians[mode] = {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]
                         if isinstance(rows[0][k], (int, float)) and k != "snapshot_index"}
    found["median"] = medians
    found["nodes"], found["busy"] = args.nodes, args.busy
    return found


if __name__ == "__main__":
    threading.current_thread().name = "bench-main"
    print(json.dumps(main()))
