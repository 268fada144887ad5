"""Resource usage for `/v1/client/allocation/{id}/stats` and `/v1/client/stats`,
in Nomad's AllocResourceUsage and HostStats shapes.

Per task: the task's processes measured with psutil (RSS, swap, user/system CPU time), and,
when the task runs in a cgroup (exec), the cgroup's memory figures (Usage, Max Usage, Cache) as
Nomad's executor reports them. CPU `Percent` is the CPU time used since the previous sample of the
same task (the first sample: since the processes started), `TotalTicks` that percentage of one
core's MHz (Nomad: Percent / 100 * cpu.totalcompute / cores). Host: memory, per-CPU percentages,
disks with inode usage, uptime, and CPUTicksConsumed in MHz.
"""

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from yurt.drivers.exec.cgroups import TaskCgroup

if TYPE_CHECKING:
    from .allocrunner import AllocRunner

MEASURED_MEMORY = ["RSS", "Swap"]  # Nomad's executor without cgroups
MEASURED_CPU = ["System Mode", "User Mode", "Percent"]


@dataclass
class _CpuSample:
    at: float  # wall clock seconds
    cpu_seconds: float


class CpuSampler:
    """CPU percent between two samples of the same task (keyed by its first pid)."""

    def __init__(self) -> None:
        self._last: dict[Any, _CpuSample] = {}
        self._lock = threading.Lock()

    def percent(self, key: Any, cpu_seconds: float, started_at: float, now: float) -> float:
        with self._lock:
            prev = self._last.get(key) or _CpuSample(started_at, 0.0)
            self._last[key] = _CpuSample(now, cpu_seconds)
        elapsed = now - prev.at
        if elapsed <= 0:
            return 0.0
        return max(0.0, (cpu_seconds - prev.cpu_seconds) / elapsed * 100.0)

    def forget_except(self, keys: set) -> None:
        with self._lock:
            for key in [k for k in self._last if k not in keys]:
                del self._last[key]


SAMPLER = CpuSampler()


def _processes(pids: list[int]) -> list[psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs[proc.pid] = proc
            procs.update((c.pid, c) for c in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(procs.values())


def _vm_swap(pid: int) -> int:
    """Swapped-out bytes of a process (VmSwap in /proc/<pid>/status; cheaper than smaps)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmSwap:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _mhz_per_core(total_compute: int) -> float:
    return total_compute / (psutil.cpu_count(logical=True) or 1)


def resource_usage(pids: list[int], total_compute: int = 0, cgroup: TaskCgroup | None = None,
                   key: Any = None) -> dict[str, Any]:
    """Nomad's ResourceUsage of the processes `pids` (and their children)."""
    rss = swap = 0
    user = system = 0.0
    started = time.time()
    for proc in _processes(pids):
        try:
            with proc.oneshot():
                cpu = proc.cpu_times()
                rss += proc.memory_info().rss
                swap += _vm_swap(proc.pid)
                user += cpu.user + cpu.children_user
                system += cpu.system + cpu.children_system
                started = min(started, proc.create_time())
        except psutil.Error:
            continue
    now = time.time()
    percent = SAMPLER.percent(key if key is not None else tuple(sorted(pids)), user + system, started, now) if pids else 0.0
    memory = {"RSS": rss, "Cache": 0, "Swap": swap, "MappedFile": 0, "Usage": 0, "MaxUsage": 0,
              "KernelUsage": 0, "KernelMaxUsage": 0, "Measured": list(MEASURED_MEMORY)}
    if cgroup is not None and cgroup.exists():
        figures, measured = cgroup.memory_stats()
        memory.update(figures)
        memory["Measured"] = sorted(set(MEASURED_MEMORY) | set(measured))
    total_ticks = percent / 100.0 * _mhz_per_core(total_compute) if total_compute else 0.0
    return {
        "MemoryStats": memory,
        "CpuStats": {
            "SystemMode": _share(system, user + system, percent), "UserMode": _share(user, user + system, percent),
            "TotalTicks": total_ticks, "ThrottledPeriods": 0, "ThrottledTime": 0, "Percent": percent,
            "Measured": list(MEASURED_CPU),
        },
        "DeviceStats": None,
    }


def _share(part: float, whole: float, percent: float) -> float:
    """The part of `percent` spent in one mode (Nomad reports User/System Mode as percentages)."""
    return percent * part / whole if whole > 0 else 0.0


def _sum_usage(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The alloc's ResourceUsage: the sum of its tasks' figures."""
    memory = {k: 0 for k in ("RSS", "Cache", "Swap", "MappedFile", "Usage", "MaxUsage", "KernelUsage", "KernelMaxUsage")}
    cpu = {k: 0.0 for k in ("SystemMode", "UserMode", "TotalTicks", "ThrottledPeriods", "ThrottledTime", "Percent")}
    measured_mem: list[str] = []
    for usage in usages:
        for k in memory:
            memory[k] += usage["MemoryStats"].get(k, 0) or 0
        for k in cpu:
            cpu[k] += usage["CpuStats"].get(k, 0) or 0
        measured_mem = measured_mem or usage["MemoryStats"]["Measured"]
    return {"MemoryStats": {**memory, "Measured": measured_mem or list(MEASURED_MEMORY)},
            "CpuStats": {**cpu, "Measured": list(MEASURED_CPU)}, "DeviceStats": None}


def _node_total_compute(runner: "AllocRunner") -> int:
    node = getattr(runner.ctx, "node", None)
    try:
        return int((node.attributes or {}).get("cpu.totalcompute", "0")) if node is not None else 0
    except ValueError:
        return 0


def alloc_stats(runner: "AllocRunner", only_task: str = "") -> dict[str, Any]:
    now = time.time_ns()
    total_compute = _node_total_compute(runner)
    tasks: dict[str, Any] = {}
    for name, tr in runner.task_runners.items():
        if only_task and name != only_task:
            continue
        running = tr.handle is not None and tr.driver is not None and tr.state.state == "running"
        pids = tr.driver.task_pids(tr.handle) if running else []
        cgroup = TaskCgroup.from_state(tr.handle.state.get("cgroup")) if running else None
        key = (runner.id, name, tr.handle.pid if running else 0)
        usage = resource_usage(pids, total_compute, cgroup, key)
        tasks[name] = {"ResourceUsage": usage, "Timestamp": now, "Pids": None}
    return {"ResourceUsage": _sum_usage([t["ResourceUsage"] for t in tasks.values()]), "Tasks": tasks,
            "Timestamp": now}


def _disk(device: str, mountpoint: str) -> dict[str, Any]:
    usage = psutil.disk_usage(mountpoint)
    st = os.statvfs(mountpoint)
    inodes = (st.f_files - st.f_ffree) / st.f_files * 100.0 if st.f_files else 0.0
    return {
        "Device": device, "Mountpoint": mountpoint, "Size": usage.total, "Used": usage.used,
        "Available": usage.free, "UsedPercent": usage.percent, "InodesUsedPercent": inodes,
    }


def _disks() -> list[dict[str, Any]]:
    out, seen = [], set()
    for part in psutil.disk_partitions(all=False):
        if part.device in seen:
            continue
        try:
            out.append(_disk(part.device, part.mountpoint))
            seen.add(part.device)
        except OSError:
            continue
    return out


def host_stats(alloc_dir: str, total_compute: int = 0) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    cpus = []
    for i, t in enumerate(psutil.cpu_times_percent(interval=None, percpu=True)):
        cpus.append({"CPU": f"cpu{i}", "User": t.user, "System": t.system, "Idle": t.idle, "Total": 100.0 - t.idle})
    per_core = _mhz_per_core(total_compute) if total_compute else 0.0
    return {
        "Memory": {"Total": mem.total, "Available": mem.available, "Used": mem.used, "Free": mem.free},
        "CPU": cpus,
        "DiskStats": _disks(),
        "AllocDirStats": _disk(alloc_dir, alloc_dir) if os.path.isdir(alloc_dir) else None,
        "DeviceStats": [],
        "Uptime": int(time.time() - psutil.boot_time()),
        "Timestamp": time.time_ns(),
        "CPUTicksConsumed": sum(c["Total"] / 100.0 * per_core for c in cpus),
    }
