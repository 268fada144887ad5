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
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


def _hog(duty: float) -> subprocess.Popen | None:
    """A process in its own session (the W1 fleet's place: another process, another
    autogroup) that burns `duty` of a core: spins `duty` x 100 ms, sleeps the rest."""
    if duty <= 0:
        return None
    code = ("import time\n"
            f"busy = {duty} * 0.1\n"
            "while True:\n"
            "    end = time.perf_counter() + busy\n"
            "    while time.perf_counter() < end: pass\n"
            "    time.sleep(max(0.0, 0.1 - busy))\n")
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


class Busy:
    """The main thread's work, one step at a time (what the server's loop would be doing)."""

    def __init__(self, store, node_ids: list[str], kind: str) -> None:
        self.store, self.node_ids, self.kind = store, node_ids, kind
        self.step = 0
        self.work = list(range(2000))
        self.allocs = list(store.snapshot().allocs()) if kind in ("walk", "plan") else []
        self.cursor = 0
        if kind == "plan":
            snap = store.snapshot()
            self.job = next(iter(snap.jobs()))
            self.template = self.allocs[0]

    def __call__(self) -> None:
        self.step += 1
        kind = self.kind
        if kind == "commit":
            from yurt.state.commands import NodeUpdateStatus

            self.store.apply(NodeUpdateStatus(node_id=self.node_ids[self.step % len(self.node_ids)], status="ready",
                                              updated_at=self.step))
        elif kind == "python":
            sum(x * x for x in self.work)
        elif kind == "walk":  # read WALK_ALLOCS stored allocs (their pages), then fixed work
            self._walk()
            sum(x * x for x in self.work)
        else:  # plan: commit PLAN_ALLOCS new allocs and their "running" (two log appends), read some
            self._walk()
            self._plan()

    def _walk(self) -> None:
        allocs, n = self.allocs, len(self.allocs)
        start = self.cursor
        self.cursor = (start + WALK_ALLOCS) % n
        for alloc in allocs[start:start + WALK_ALLOCS]:
            if alloc.client_status == "lost" and alloc.node_id:
                raise AssertionError

    def _plan(self) -> None:
        from yurt.state.commands import AllocClientUpdate, AllocUpdate, PlanApply
        from yurt.structs import TaskState, evolve, generate_uuid

        by_node: dict[str, list] = {}
        ids = []
        for k in range(PLAN_ALLOCS):
            node_id = self.node_ids[(self.step * PLAN_ALLOCS + k) % len(self.node_ids)]
            alloc = evolve(self.template, id=generate_uuid(), name=f"{self.job.id}.g[{k}]", job=None,
                           node_id=node_id, create_index=0, modify_index=0, alloc_modify_index=0)
            by_node.setdefault(node_id, []).append(alloc)
            ids.append(alloc.id)
        self.store.apply(PlanApply(eval_id=self.template.eval_id, job=self.job, node_allocation=by_node,
                                   updated_at=time.time_ns()))
        running = {"t": TaskState(state="running")}
        self.store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status="running", task_states=running)
                                                   for i in ids], updated_at=time.time_ns()))


_DELETE_SETTINGS: dict = {}  # "new": sqlite.log's own _DELETE_TXN_BYTES, _DELETE_MAX_ROWS
WALK_ALLOCS = 200
PLAN_ALLOCS = 50


class _Phase:
    """The busy main thread's figures over one phase."""

    def __init__(self) -> None:
        self.wall, self.usage, self.main = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF), \
            resource.getrusage(resource.RUSAGE_THREAD)
        self.steps, self.last, self.max_gap = 0, self.wall, 0.0

    def tick(self) -> None:
        self.steps += 1
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def figures(self, prefix: str) -> dict:
        wall = time.perf_counter() - self.wall
        usage, main = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
        m_user, m_sys = main.ru_utime - self.main.ru_utime, main.ru_stime - self.main.ru_stime
        # the other threads: user CPU (Python, SQLite code: what can hold the GIL) and system CPU
        o_user = usage.ru_utime - self.usage.ru_utime - m_user
        o_sys = usage.ru_stime - self.usage.ru_stime - m_sys
        return {f"{prefix}_wall_s": round(wall, 2), f"{prefix}_steps_per_s": round(self.steps / wall, 1),
                f"{prefix}_max_gap_ms": round(self.max_gap * 1000, 1),
                # the busy thread's share of a core, and of it in the kernel (page faults)
                f"{prefix}_main_cpu_share": round((m_user + m_sys) / wall, 3),
                f"{prefix}_main_sys_s": round(m_sys, 2),
                f"{prefix}_main_cpu_ms_per_step": round((m_user + m_sys) / max(self.steps, 1) * 1000, 3),
                f"{prefix}_main_minflt_mb": round((main.ru_minflt - self.main.ru_minflt) * _PAGE_MB, 1),
                f"{prefix}_parent_minflt_mb": round((usage.ru_minflt - self.usage.ru_minflt) * _PAGE_MB, 1),
                f"{prefix}_others_user_s": round(o_user, 2), f"{prefix}_others_sys_s": round(o_sys, 2)}


def measure(store, busy: Busy, mode: str, before_s: float, baseline_s: float = 0.0) -> dict:
    """`before_s` of the busy loop alone, then the same loop while one snapshot runs (mode
    `none`: for `baseline_s` more, no snapshot)."""
    rss = _rss_mb()
    before = _Phase()
    while time.perf_counter() - before.wall < before_s:
        busy()
        before.tick()
    out = {"mode": mode, **before.figures("before")}
    during = _Phase()
    if mode == "none":
        stop = time.perf_counter() + baseline_s
        thread = threading.Thread(target=lambda: time.sleep(max(0.0, stop - time.perf_counter())))
        thread.start()
    else:
        from yurt.state import persist

        store.fork_snapshots = mode.startswith("fork")
        from yurt.state.sqlite import log as sqlite_log

        # fork-old: as before wt-snap (the child at the server's priority, chunks sent as encoded,
        # the log deleted 16 rows per transaction); fork-normal: only the priority as before
        old = mode == "fork-old"
        persist.CHILD_PRIORITY = "normal" if mode in ("fork-old", "fork-normal") else persist.DEFAULT_CHILD_PRIORITY
        persist.COMPRESS_CHUNKS = not old
        _DELETE_SETTINGS.setdefault("new", (sqlite_log._DELETE_TXN_BYTES, sqlite_log._DELETE_MAX_ROWS))
        sqlite_log._DELETE_TXN_BYTES, sqlite_log._DELETE_MAX_ROWS = (1 << 62, 16) if old else _DELETE_SETTINGS["new"]
        _start(store)
        thread = store._snapshot_thread
    assert thread is not None, "no snapshot started"
    while thread.is_alive():
        busy()
        during.tick()
    out.update(during.figures("during"))
    thread.join()
    out["throughput_ratio"] = round(out["during_steps_per_s"] / max(out["before_steps_per_s"], 1e-9), 3)
    out["rss_mb"] = round(rss, 1)
    child = store.last_snapshot_child if mode.startswith("fork") else None
    if child is not None and child.rusage is not None:
        ru = child.rusage
        out.update(child_exit=child.exit_code, fork_ms=round(child.fork_s * 1000, 1),
                   child_cpu_s=round(ru.ru_utime + ru.ru_stime, 2), child_maxrss_mb=round(ru.ru_maxrss / 1024, 1),
                   child_minflt_mb=round(ru.ru_minflt * _PAGE_MB, 1))
    found = store._backend.latest_snapshot()
    out["snapshot_index"] = found[0] if found else 0
    return out


def _fill_log(store, mb: float, entry_bytes: int = 1_600_000) -> None:
    """Log entries of `entry_bytes` at the lowest indexes below the state's (never read again:
    the next snapshot covers them and deletes them), `mb` in all."""
    backend = store._backend
    row = backend._conn.execute("SELECT COALESCE(MIN(idx), ?) FROM log", (store.latest_index + 1,)).fetchone()
    top = row[0] - 1
    count = min(int(mb * 2**20 / entry_bytes), top)
    data = bytes(range(256)) * (entry_bytes // 256)
    for idx in range(top - count + 1, top + 1, 16):
        backend.append([(i, data) for i in range(idx, min(idx + 16, top + 1))])


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
    parser.add_argument("--modes", default="thread,fork",
                        help="thread, fork, fork-normal (the child at the server's priority), fork-old (as before wt-snap), "
                             "none (no snapshot)")
    parser.add_argument("--busy", choices=("commit", "python", "walk", "plan"), default="commit")
    parser.add_argument("--before-s", type=float, default=0.0, dest="before_s",
                        help="run the busy loop alone this long before each snapshot (the 'before' figures)")
    parser.add_argument("--hog", type=float, default=0.0,
                        help="a CPU hog process using this fraction of a core (the fleet's place)")
    parser.add_argument("--log-mb", type=float, default=0.0, dest="log_mb",
                        help="before each snapshot, log this many MB of 1.6 MB entries below the state's index "
                             "(W1's plans: the snapshot then truncates them)")
    parser.add_argument("--codec", action="store_true", help="also persist's encode/decode CPU")
    args = parser.parse_args(argv)

    from bench import micro_state_writes

    found: dict = {}

    def inspect(store) -> dict:
        # build done (prefill skipped the log): measure on the store as the server holds it
        node_ids = [n.id for n in store.snapshot().nodes()]
        found["allocs"] = len(store.snapshot().allocs())
        busy = Busy(store, node_ids, args.busy)
        hog = _hog(args.hog)
        runs = []
        try:
            for _ in range(args.runs):
                for mode in args.modes.split(","):
                    # "none": no snapshot, the busy loop alone for as long as the last snapshot took
                    last = next((r["during_wall_s"] for r in reversed(runs) if r["mode"] != "none"), 10.0)
                    if args.log_mb:
                        _fill_log(store, args.log_mb)
                    runs.append(measure(store, busy, mode, args.before_s, last))
                    print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
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
        medians[mode] = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]
                         if isinstance(rows[0][k], (int, float)) and k != "snapshot_index"}
    found["median"] = medians
    found.update(nodes=args.nodes, busy=args.busy, hog=args.hog, before_s=args.before_s)
    return found


if __name__ == "__main__":
    threading.current_thread().name = "bench-main"
    print(json.dumps(main()))
