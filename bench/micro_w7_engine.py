"""Where the Docker engine's time goes when it starts W7's 50 containers (issue 7 W7).

    flock /work/wt/bench.lock .venv/bin/python bench/micro_w7_engine.py [--threads 50]
        [--order pair|creates-first] [--network bridge|none|host] [--perf FILE] [--repeat N]

Creates and starts `--count` busybox containers straight through the Engine API (no
orchestrator) with the settings of one of yurt's W7 containers (3 binds, 16 MB memory limit
without swap, cpu_shares 20, Nomad's env and labels, default bridge network, json-file
logs), from `--threads` threads, and reports for the run (t0 = first request, until all
are running):
- wall time to all running, create and start call latencies;
- the machine's CPU from /proc/stat (user, system, idle, iowait seconds; busy fraction of
  all cores) and the engine processes' CPU (dockerd, containerd, shims; with `cutime` the
  children they reaped: runc, the libnetwork-setkey hook, ...);
- with `--perf FILE`: `perf record -a` over the run, summarised per command (every process
  on the machine, short-lived ones included) and per kernel/user symbol;
- the engine's own event times per container (create, network connect, start) from
  `/events`, to see whether starts overlap or follow one another.

`--order creates-first`: every thread creates its container, all wait for all creates, then
all start (separates the two phases); `pair` (default): create then start per thread (as
yurt's driver and the W7 floor do)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.scenarios.w7_docker import containers_cgroup_cpu_seconds  # noqa: E402

IMAGE = "yurt-test/busybox:latest"
LABEL = "io.yurt.bench.engine"
CLK = os.sysconf("SC_CLK_TCK")


def bare_body(run_id: str, network: str) -> dict:
    """A Swarm-like container: no binds, no limits, a few labels."""
    return {"Image": IMAGE, "Cmd": ["sleep", "3600"], "Labels": {LABEL: run_id},
            "HostConfig": {"NetworkMode": network}}


def yurt_like_body(root: str, index: int, run_id: str, network: str) -> dict:
    """A create body with the settings yurt's driver gives a W7 task (`sleep 3600`, cpu 20,
    memory 16 MB): the three task-dir binds, Nomad's env and labels."""
    binds = []
    for host, inside in (("alloc", "/alloc"), ("local", "/local"), ("secrets", "/secrets")):
        path = os.path.join(root, str(index), host)
        os.makedirs(path, exist_ok=True)
        binds.append(f"{path}:{inside}")
    alloc = str(uuid.uuid4())
    env = {
        "NOMAD_ALLOC_DIR": "/alloc", "NOMAD_TASK_DIR": "/local", "NOMAD_SECRETS_DIR": "/secrets",
        "NOMAD_ALLOC_ID": alloc, "NOMAD_ALLOC_INDEX": str(index), "NOMAD_ALLOC_NAME": f"w7.g[{index}]",
        "NOMAD_CPU_LIMIT": "20", "NOMAD_CPU_CORES": "", "NOMAD_MEMORY_LIMIT": "16", "NOMAD_DC": "dc1",
        "NOMAD_GROUP_NAME": "g", "NOMAD_JOB_ID": "w7", "NOMAD_JOB_NAME": "w7", "NOMAD_JOB_PARENT_ID": "",
        "NOMAD_NAMESPACE": "default", "NOMAD_REGION": "global", "NOMAD_TASK_NAME": "c",
        "NOMAD_SHORT_ALLOC_ID": alloc[:8], "NOMAD_SHORT_ALLOC_NAME": "g", "NOMAD_UNIQUE_ALLOC_NAME": "x",
        "NOMAD_NODE_ID": "n", "NOMAD_NODE_NAME": "bench-dev", "NOMAD_NODE_CLASS": "",
    }
    host_config = {"Binds": binds, "Memory": 16 << 20, "MemorySwap": 16 << 20, "CpuShares": 20,
                   "NetworkMode": network}
    return {"Image": IMAGE, "Cmd": ["sleep", "3600"], "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": {LABEL: run_id, "com.hashicorp.nomad.alloc_id": alloc}, "HostConfig": host_config}


def proc_stat() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def engine_cpu() -> dict[str, float]:
    """CPU seconds (own, own + reaped children) of dockerd, containerd and the shims."""
    own = {"dockerd": 0.0, "containerd": 0.0, "shims": 0.0}
    reaped = dict(own)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        key = "shims" if comm.startswith("containerd-shim") else comm if comm in own else None
        if key is None:
            continue
        utime, stime, cutime, cstime = (int(x) / CLK for x in fields[11:15])
        own[key] += utime + stime
        reaped[key] += cutime + cstime
    return {**{f"{k}_cpu_s": v for k, v in own.items()}, **{f"{k}_reaped_cpu_s": v for k, v in reaped.items()}}


class EventLog(threading.Thread):
    """The engine's container events (create, connect, start) with their nanosecond times."""

    def __init__(self, api, since: float):
        super().__init__(daemon=True)
        self.api, self.since, self.events = api, since, []
        self.stream = None

    def run(self):
        self.stream = self.api.events(since=int(self.since), decode=True)
        try:
            for ev in self.stream:
                self.events.append(ev)
        except Exception:
            pass

    def close(self):
        if self.stream is not None:
            self.stream.close()


def run_once(api, args, run_id: str) -> dict:
    root = tempfile.mkdtemp(prefix="yurt-micro-w7-")
    bodies = [bare_body(run_id, args.network) if args.bare else yurt_like_body(root, i, run_id, args.network)
              for i in range(args.count)]
    creates, starts = [], []
    barrier = threading.Barrier(args.threads) if args.order == "creates-first" else None
    events = EventLog(api, time.time() - 1)
    events.start()
    time.sleep(0.3)

    def one(i: int) -> None:
        t = time.perf_counter()
        cid = api.create_container_from_config(bodies[i], name=f"w7-micro-{run_id}-{i}")["Id"]
        creates.append(time.perf_counter() - t)
        if barrier is not None:
            barrier.wait()
        t = time.perf_counter()
        api.start(cid)
        starts.append((time.perf_counter() - t, time.perf_counter()))

    perf = None
    if args.perf:
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F", str(args.perf_hz),
                                 "-o", args.perf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    stat0, eng0 = proc_stat(), engine_cpu()
    t0, t0_unix = time.perf_counter(), time.time()
    try:
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(one, range(args.count)))
        while len(api.containers(filters={"label": f"{LABEL}={run_id}", "status": "running"}, quiet=True)) < args.count:
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        stat1, eng1 = proc_stat(), engine_cpu()
        in_containers = containers_cgroup_cpu_seconds([c["Id"] for c in api.containers(filters={"label": f"{LABEL}={run_id}"}, quiet=True)])
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
    finally:
        ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL}={run_id}"}, quiet=True)]
        time.sleep(0.5)
        events.close()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda cid: api.remove_container(cid, force=True, v=True), ids))
        shutil.rmtree(root, ignore_errors=True)
    d = [(b - a) / CLK for a, b in zip(stat0, stat1)]
    user, nice, system, idle, iowait, irq, softirq, steal = d[:8]
    ncpu = os.cpu_count() or 1
    busy = user + nice + system + irq + softirq + steal
    starts_sorted = sorted(s for s, _ in starts)
    engine_total = sum(eng1[k] - eng0[k] for k in eng0) + in_containers
    out = {
        "threads": args.threads, "order": args.order, "network": args.network, "bare": args.bare, "all_running_s": round(wall, 2),
        "create_p50_ms": round(statistics.median(creates) * 1000), "create_max_ms": round(max(creates) * 1000),
        "start_call_p50_ms": round(statistics.median(starts_sorted) * 1000),
        "start_call_max_ms": round(starts_sorted[-1] * 1000),
        "machine_busy_s": round(busy, 2), "machine_user_s": round(user + nice, 2), "machine_sys_s": round(system + irq + softirq, 2),
        "machine_idle_s": round(idle, 2), "machine_iowait_s": round(iowait, 2), "steal_s": round(steal, 2),
        "busy_fraction": round(busy / (wall * ncpu), 2),
        **{k: round(eng1[k] - eng0[k], 2) for k in eng0}, "containers_cgroup_cpu_s": round(in_containers, 2),
        "engine_total_cpu_s": round(engine_total, 2),
        "engine_cpu_per_container_ms": round(engine_total / args.count * 1000),
        **timeline(events.events, run_id, t0_unix, api),
    }
    return out


def timeline(events: list[dict], run_id: str, t0_unix: float, api) -> dict:
    """Per container from the engine's events: create, network connect and start times after t0;
    how many starts were in progress at once (connect -> start)."""
    by_id: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    for ev in events:
        t = ev.get("timeNano", 0) / 1e9 - t0_unix
        if ev.get("Type") == "container":
            attrs = (ev.get("Actor") or {}).get("Attributes") or {}
            if attrs.get(LABEL) != run_id:
                continue
            cid = ev["Actor"]["ID"]
            by_id.setdefault(cid, {})[ev.get("Action")] = t
        elif ev.get("Type") == "network" and ev.get("Action") == "connect":
            cid = ((ev.get("Actor") or {}).get("Attributes") or {}).get("container", "")
            names[cid] = ""
            by_id.setdefault(cid, {})["connect"] = t
    rows = [v for v in by_id.values() if "start" in v and "create" in v]
    if not rows:
        return {}
    conn = [v for v in rows if "connect" in v]
    spans = sorted((v.get("connect", v["create"]), v["start"]) for v in rows)
    # the mean number of starts in flight between the first connect and the last start
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
    inflight = sum(b - a for a, b in spans) / (hi - lo) if hi > lo else 0
    starts = sorted(v["start"] for v in rows)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return {
        "ev_last_create_s": round(max(v["create"] for v in rows), 2),
        "ev_first_connect_s": round(min(v["connect"] for v in conn), 2) if conn else None,
        "ev_start_first_median_last_s": [round(starts[0], 2), round(starts[len(starts) // 2], 2), round(starts[-1], 2)],
        "ev_connect_to_start_p50_ms": round(statistics.median(v["start"] - v["connect"] for v in conn) * 1000) if conn else None,
        "ev_start_gap_p50_ms": round(statistics.median(gaps) * 1000) if gaps else None,
        "ev_starts_in_flight_mean": round(inflight, 1),
    }


def perf_summary(path: str, top: int) -> str:
    by_comm = subprocess.run(["perf", "report", "-i", path, "--sort", "comm", "--stdio", "--no-children"],
                             capture_output=True, text=True).stdout
    lines = [l for l in by_comm.splitlines() if l.strip() and not l.startswith("#")]
    return "\n".join(lines[:top])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--order", choices=("pair", "creates-first"), default="pair")
    parser.add_argument("--network", default="bridge")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bare", action="store_true", help="Swarm-like containers: no binds, no limits")
    parser.add_argument("--perf", default="", help="perf record -a output file (one run)")
    parser.add_argument("--perf-hz", type=int, default=499)
    args = parser.parse_args()
    api = docker.from_env(timeout=120).api
    api.inspect_image(IMAGE)
    for _ in range(args.repeat):
        out = run_once(api, args, uuid.uuid4().hex[:8])
        print(json.dumps(out), flush=True)
        if args.perf:
            print(perf_summary(args.perf, 25), flush=True)
        time.sleep(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
