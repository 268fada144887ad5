"""W7: real containers. 50 busybox containers through yurt's docker driver (one job of
count 50 on a dev agent), then the same 50 through Docker Swarm (`docker service create
--replicas 50`) on the same engine. Each is timed from the request (job register /
service create) to 50 of its containers running in the engine, counted with the same
engine query for both (`GET /containers/json?filters=label=...,status=running`); for yurt
also to 50 tasks reported `running` by its API. Goal: yurt / Swarm <= 0.5.

Between the two, the engine's own floor: 50 containers created and started straight through the
Engine API from 50 threads (no orchestrator at all), each with the Config and HostConfig of one of
yurt's containers (its binds pointed at an empty directory of the same layout, its labels
replaced). Neither side can be faster than that; `floor_to_swarm` says how far below Swarm any
orchestrator on this engine can get.

After yurt's side, `job stop -purge`: every one of its allocs must be terminal on the server
within STOP_TIMEOUT (else the scenario fails, naming a stuck alloc and its task events);
`yurt_all_stopped_after_purge_s` is that time.

Swarm: when the engine is not in a swarm, `docker swarm init --advertise-addr 127.0.0.1`
and `docker swarm leave --force` at the end; an engine already in a swarm is used as it
is and left in it. The local image is used without a registry (`--no-resolve-image`).

The engine's CPU: `<side>_engine_cpu_s` is dockerd + containerd + the shims' own CPU;
`<side>_engine_all_cpu_s` adds what they reaped (runc; dockerd's two re-executions of itself per
bridged container: the `libnetwork-setkey` prestart hook and `set-ipv6`) and the containers' own
cgroups (runc init). `engine_cpu_bound_s` = the floor's all-CPU / the machine's cores: the least
time this engine needs for the 50 containers even with every core to itself, whoever asks.

`YURT_W7_NETWORK=host` (or `none`, ...): a variant with that network mode on both sides (the
job's `network_mode`, the service's `--network`); not the goal's figure (the goal's job has no
network_mode: the default bridge, as Nomad's)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import aiohttp

from ..agentproc import AgentProcess
from ..figures import log

IMAGE = "yurt-test/busybox:latest"
COUNT = 50
TIMEOUT = 180.0
POLL = 0.05
YURT_JOB_LABEL = "com.hashicorp.nomad.job_name"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
FLOOR_LABEL = "io.yurt.bench.floor"
DOCKER_PLUGIN_HCL = 'plugin "docker" {\n  config {\n    volumes { enabled = false }\n  }\n}\n'


NETWORK = os.environ.get("YURT_W7_NETWORK", "")


def docker_job(job_id: str, count: int, network: str = "") -> dict:
    config = {"image": IMAGE, "command": "sleep", "args": ["3600"], **({"network_mode": network} if network else {})}
    task = {"Name": "c", "Driver": "docker", "Config": config,
            "Resources": {"CPU": 20, "MemoryMB": 16}}
    group = {"Name": "g", "Count": count, "Tasks": [task], "EphemeralDisk": {"SizeMB": 10},
             "Update": {"MaxParallel": 0}}
    return {"Job": {"ID": job_id, "Name": job_id, "Type": "service", "Datacenters": ["*"], "TaskGroups": [group]}}


def _engine():
    import docker

    return docker.from_env(timeout=60).api


def running_containers(api, label: str, value: str) -> int:
    return len(api.containers(filters={"label": f"{label}={value}", "status": "running"}, quiet=True))


def all_containers(api, label: str, value: str) -> int:
    return len(api.containers(all=True, filters={"label": f"{label}={value}"}, quiet=True))


async def _wait_engine(api, label: str, value: str, count: int, t0: float) -> float | None:
    """Seconds from `t0` until `count` containers with the label run in the engine."""
    while time.perf_counter() - t0 < TIMEOUT:
        if await asyncio.to_thread(running_containers, api, label, value) >= count:
            return time.perf_counter() - t0
        await asyncio.sleep(POLL)
    return None


async def _wait_gone(api, label: str, value: str, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and await asyncio.to_thread(all_containers, api, label, value):
        await asyncio.sleep(0.5)


async def _wait_api_running(http: aiohttp.ClientSession, base: str, job_id: str, count: int,
                            index: int, t0: float, seen: set[str]) -> float | None:
    """Seconds from `t0` until yurt reports `count` allocs with their task running; the alloc
    IDs it saw go into `seen`."""
    while time.perf_counter() - t0 < TIMEOUT:
        async with http.get(f"{base}/v1/job/{job_id}/allocations", params={"index": index, "wait": "5s"}) as resp:
            allocs = await resp.json()
            index = int(resp.headers.get("X-Nomad-Index", index))
        seen.update(a["ID"] for a in allocs)
        running = sum(1 for a in allocs
                      if any(s.get("State") == "running" for s in (a.get("TaskStates") or {}).values()))
        failed = [a for a in allocs if a.get("ClientStatus") in ("failed", "lost")]
        if failed:
            raise RuntimeError(f"W7: alloc {failed[0]['ID']} {failed[0]['ClientStatus']}: {failed[0].get('TaskStates')}")
        if running >= count:
            return time.perf_counter() - t0
    return None


STOP_TIMEOUT = 60.0
TERMINAL = ("complete", "failed", "lost")


async def _wait_api_stopped(http: aiohttp.ClientSession, base: str, alloc_ids: set[str], t0: float) -> tuple[float | None, list[dict]]:
    """After the purge: seconds from `t0` until every alloc in `alloc_ids` is terminal on the
    server (or garbage-collected), and the allocs still not terminal at the deadline."""
    left: list[dict] = []
    while time.perf_counter() - t0 < STOP_TIMEOUT:
        async with http.get(f"{base}/v1/allocations") as resp:
            listed = {a["ID"]: a for a in await resp.json()}
        left = [listed[i] for i in alloc_ids if i in listed and listed[i].get("ClientStatus") not in TERMINAL]
        if not left:
            return time.perf_counter() - t0, []
        await asyncio.sleep(0.25)
    return None, left


def _stuck_report(left: list[dict]) -> str:
    a = left[0]
    events = [(name, [e.get("Type") for e in (s.get("Events") or [])]) for name, s in (a.get("TaskStates") or {}).items()]
    return (f"W7: {len(left)} allocs not stopped {STOP_TIMEOUT:.0f} s after the purge; e.g. {a['ID']} "
            f"client {a.get('ClientStatus')} desired {a.get('DesiredStatus')}, task events {events}")


async def run_yurt(api, count: int) -> dict:
    agent = AgentProcess(mode="dev", extra_hcl=DOCKER_PLUGIN_HCL).start()
    job_id = f"w7-{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            async with http.get(f"{agent.address}/v1/nodes") as resp:
                nodes = await resp.json()
            node_id = nodes[0]["ID"]
            async with http.get(f"{agent.address}/v1/node/{node_id}") as resp:
                docker_info = ((await resp.json()).get("Drivers") or {}).get("docker") or {}
            if not docker_info.get("Healthy"):
                raise RuntimeError(f"W7: the dev agent's docker driver is not healthy: {docker_info}")
            log(f"W7: yurt: job {job_id}, count {count}, docker driver on {agent.address}")
            cpu0, engine0 = agent.cpu_seconds(), engine_snapshot()
            t0, t0_unix = time.perf_counter(), time.time()
            async with http.put(f"{agent.address}/v1/jobs", json=docker_job(job_id, count, NETWORK)) as resp:
                resp.raise_for_status()
                index = (await resp.json()).get("Index", 0)
            alloc_ids: set[str] = set()
            engine_s, api_s = await asyncio.gather(
                _wait_engine(api, YURT_JOB_LABEL, job_id, count, t0),
                _wait_api_running(http, agent.address, job_id, count, index, t0, alloc_ids))
            agent_cpu = agent.cpu_seconds() - cpu0
            engine_cpu = engine_cpu_figures("yurt", engine0, api, YURT_JOB_LABEL, job_id)
            helpers_cpu = descendants_cpu_seconds(agent.proc.pid)
            timeline = engine_timeline(api, YURT_JOB_LABEL, job_id, t0_unix)
            sample = api.inspect_container(api.containers(filters={"label": f"{YURT_JOB_LABEL}={job_id}"}, quiet=True)[0]["Id"])
            t_stop = time.perf_counter()
            async with http.delete(f"{agent.address}/v1/job/{job_id}", params={"purge": "true"}) as resp:
                resp.raise_for_status()
            stopped_s, left = await _wait_api_stopped(http, agent.address, alloc_ids, t_stop)
            if left:
                raise RuntimeError(f"{_stuck_report(left)}\nagent log:\n{agent.log_tail(60)}")
            await _wait_gone(api, YURT_JOB_LABEL, job_id)
    finally:
        agent.stop()
        for cid in api.containers(all=True, filters={"label": f"{YURT_JOB_LABEL}={job_id}"}, quiet=True):
            api.remove_container(cid["Id"], force=True)
    return {"yurt_engine_running_s": _round(engine_s), "yurt_api_running_s": _round(api_s),
            "yurt_allocs": len(alloc_ids), "yurt_all_stopped_after_purge_s": _round(stopped_s),
            "yurt_agent_cpu_s": round(agent_cpu, 1), "yurt_helpers_cpu_s": round(helpers_cpu, 2),
            **engine_cpu, **{f"yurt_{k}": v for k, v in timeline.items()}, "_sample": sample}


def floor_config(sample: dict, root: str, index: int) -> dict:
    """A create-container body with the sample container's settings: binds moved under `root`
    (same layout, empty directories), the floor's label instead of yurt's."""
    config = {k: v for k, v in sample["Config"].items() if k not in ("Hostname", "Labels")}
    host_config = dict(sample["HostConfig"])
    binds = []
    for bind in host_config.get("Binds") or []:
        host, _, rest = bind.partition(":")
        moved = os.path.join(root, str(index), host.lstrip("/").replace("/", "_"))
        os.makedirs(moved, exist_ok=True)
        binds.append(f"{moved}:{rest}")
    host_config["Binds"] = binds
    return {**config, "Labels": {FLOOR_LABEL: "1"}, "HostConfig": host_config}


async def run_floor(api, sample: dict, count: int) -> dict:
    """The engine alone: `count` containers created and started from `count` threads at once."""
    root = tempfile.mkdtemp(prefix="yurt-bench-w7-floor-")
    run_id = uuid.uuid4().hex[:8]

    def one(i: int) -> None:
        body = floor_config(sample, root, i)
        body["Labels"][FLOOR_LABEL] = run_id
        created = api.create_container_from_config(body, name=f"w7-floor-{run_id}-{i}")
        api.start(created["Id"])

    try:
        log(f"W7: engine floor: {count} containers from {count} threads, yurt's container settings")
        engine0 = engine_snapshot()
        t0, t0_unix = time.perf_counter(), time.time()
        with ThreadPoolExecutor(count) as pool:
            waiter = asyncio.ensure_future(_wait_engine(api, FLOOR_LABEL, run_id, count, t0))
            await asyncio.gather(*(asyncio.wrap_future(pool.submit(one, i)) for i in range(count)))
            engine_s = await waiter
        engine_cpu = engine_cpu_figures("floor", engine0, api, FLOOR_LABEL, run_id)
        timeline = engine_timeline(api, FLOOR_LABEL, run_id, t0_unix)
    finally:
        ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{FLOOR_LABEL}={run_id}"}, quiet=True)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda cid: api.remove_container(cid, force=True, v=True), ids))
        shutil.rmtree(root, ignore_errors=True)
    return {"floor_engine_running_s": _round(engine_s), **engine_cpu,
            **{f"floor_{k}": v for k, v in timeline.items()}}


def _unix_s(stamp: str) -> float:
    """The engine's RFC 3339 nano timestamp in unix seconds."""
    from datetime import datetime

    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (fraction or "0"))


def engine_timeline(api, label: str, value: str, t0_unix: float) -> dict:
    """From the engine's own records of the labelled containers, seconds after `t0_unix`: the
    last container created, the first / median / last started (where an orchestrator's own
    delay shows: before the creates, or between create and start)."""
    ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{label}={value}"}, quiet=True)]
    infos = [api.inspect_container(i) for i in ids]
    created = sorted(_unix_s(i["Created"]) - t0_unix for i in infos)
    started = sorted(_unix_s(i["State"]["StartedAt"]) - t0_unix for i in infos if i["State"].get("StartedAt"))
    if not created or not started:
        return {}
    return {"last_created_s": round(created[-1], 2),
            "started_first_median_last_s": [round(started[0], 2), round(started[len(started) // 2], 2), round(started[-1], 2)]}


def descendants_cpu_seconds(pid: int) -> float:
    """CPU seconds of the agent's live descendants (the docker log followers' launcher and the
    followers it forked; a follower started as a detached process of its own is not counted)."""
    import psutil

    total = 0.0
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


ENGINE_PROCESSES = ("dockerd", "containerd")


def engine_snapshot() -> dict[int, tuple[float, float]]:
    """Per live engine process (dockerd, containerd, the containerd shims): its own CPU seconds
    and those of the children it has reaped (runc, the shims' `start` processes, and dockerd's
    re-executions of itself: the `libnetwork-setkey` prestart hook, via runc and the shim, and
    `set-ipv6`; on this engine those cost more than dockerd's own work)."""
    import psutil

    snapshot = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name = proc.info["name"] or ""
        times = proc.info["cpu_times"]
        if times is not None and (name in ENGINE_PROCESSES or name.startswith("containerd-shim")):
            snapshot[proc.pid] = (times.user + times.system, times.children_user + times.children_system)
    return snapshot


def engine_cpu_delta(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]]) -> tuple[float, float]:
    """(own, reaped children) CPU seconds the engine processes alive at `after` used since
    `before` (a process started in between counts from zero; one that ended is not counted,
    so a window must end with its containers still running)."""
    own = reaped = 0.0
    for pid, (cpu, children) in after.items():
        cpu0, children0 = before.get(pid, (0.0, 0.0))
        own += cpu - cpu0
        reaped += children - children0
    return own, reaped


def containers_cgroup_cpu_seconds(ids: list[str]) -> float:
    """CPU seconds charged to the containers' own cgroups: runc init (namespaces, mounts,
    seccomp) before it executes the task, then the task (here `sleep`: ~0). cgroup v1 or v2,
    cgroupfs or systemd driver; 0 for a container whose cgroup is not found."""
    total = 0.0
    for cid in ids:
        for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
                            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e-6),
                            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e-6)):
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                continue
            if text.startswith("usage_usec"):
                text = text.split()[1]
            total += int(text.split()[0]) * scale
            break
    return total


def engine_cpu_figures(prefix: str, before: dict, api, label: str, value: str) -> dict:
    """`<prefix>_engine_cpu_s`: dockerd + containerd + shims, their own CPU (the figure W7 has
    always reported); `<prefix>_engine_all_cpu_s`: plus their reaped children and the containers'
    own cgroups, i.e. all the CPU the engine spent on the containers."""
    own, reaped = engine_cpu_delta(before, engine_snapshot())
    ids = [c["Id"] for c in api.containers(filters={"label": f"{label}={value}"}, quiet=True)]
    in_containers = containers_cgroup_cpu_seconds(ids)
    return {f"{prefix}_engine_cpu_s": round(own, 1), f"{prefix}_engine_all_cpu_s": round(own + reaped + in_containers, 1)}


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


async def run_swarm(api, count: int) -> dict:
    state = _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    own_swarm = state == "inactive"
    if own_swarm:
        _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif state != "active":
        raise RuntimeError(f"W7: the engine's swarm state is {state!r}")
    service = f"w7-{uuid.uuid4().hex[:8]}"
    try:
        log(f"W7: swarm: service {service}, {count} replicas ({'own swarm' if own_swarm else 'existing swarm'})")
        engine0 = engine_snapshot()
        t0, t0_unix = time.perf_counter(), time.time()
        created = await asyncio.to_thread(
            _docker, "service", "create", "--detach", "--no-resolve-image", "--name", service,
            "--replicas", str(count), *(["--network", NETWORK] if NETWORK else []), IMAGE, "sleep", "3600")
        create_s = time.perf_counter() - t0
        if created.returncode != 0:
            raise RuntimeError(f"W7: docker service create: {created.stderr}")
        engine_s = await _wait_engine(api, SWARM_SERVICE_LABEL, service, count, t0)
        engine_cpu = engine_cpu_figures("swarm", engine0, api, SWARM_SERVICE_LABEL, service)
        timeline = engine_timeline(api, SWARM_SERVICE_LABEL, service, t0_unix)
    finally:
        _docker("service", "rm", service, check=False)
        await _wait_gone(api, SWARM_SERVICE_LABEL, service)
        if own_swarm:
            _docker("swarm", "leave", "--force", check=False)
    return {"swarm_engine_running_s": _round(engine_s), "swarm_create_cmd_s": _round(create_s),
            **engine_cpu, **{f"swarm_{k}": v for k, v in timeline.items()}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run(short: bool = False) -> dict:
    api = _engine()
    api.ping()
    api.inspect_image(IMAGE)  # the local test image must be there (no registry)
    figures = {"scenario": "W7", "containers": COUNT, "network_mode": NETWORK or "default (bridge)"}
    figures.update(await run_yurt(api, COUNT))
    figures.update(await run_floor(api, figures.pop("_sample"), COUNT))
    figures.update(await run_swarm(api, COUNT))
    yurt_s, swarm_s = figures["yurt_api_running_s"], figures["swarm_engine_running_s"]
    floor_s = figures["floor_engine_running_s"]
    cores = os.cpu_count() or 1
    bound_s = figures["floor_engine_all_cpu_s"] / cores
    figures.update(floor_engine_cpu_per_container_ms=round(figures["floor_engine_all_cpu_s"] / COUNT * 1000),
                   cores=cores, engine_cpu_bound_s=round(bound_s, 2),
                   bound_to_swarm=round(bound_s / swarm_s, 2) if swarm_s else None)
    ratio = round(yurt_s / swarm_s, 2) if yurt_s and swarm_s else None
    figures.update(ratio_yurt_to_swarm=ratio, goal="yurt (API: all 50 running) / Swarm (50 running) <= 0.5",
                   met=bool(ratio is not None and ratio <= 0.5),
                   floor_to_swarm=round(floor_s / swarm_s, 2) if floor_s and swarm_s else None,
                   yurt_to_floor=round(yurt_s / floor_s, 2) if yurt_s and floor_s else None)
    return figures
