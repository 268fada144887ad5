"""Resource usage for `/v1/client/allocation/{id}/stats` and `/v1/client/stats`,
in Nomad's AllocResourceUsage and HostStats shapes (measured with psutil)."""

import os
import time
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from .allocrunner import AllocRunner

MEASURED_MEMORY = ["RSS", "Swap"]
MEASURED_CPU = ["System Mode", "User Mode", "Percent"]


def _processes(pids: list[int]) -> list[psutil.Process]:
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs.append(proc)
            procs.extend(proc.children(recursive=True))
        except psutil.Error:
            continue
    return procs


def resource_usage(pids: list[int]) -> dict[str, Any]:
    rss = swap = 0
    user = system = percent = 0.0
    for proc in _processes(pids):
        try:
            with proc.oneshot():
                mem = proc.memory_info()
                cpu = proc.cpu_times()
                rss += mem.rss
                user += cpu.user
                system += cpu.system
                percent += proc.cpu_percent(interval=None)
        except psutil.Error:
            continue
    return {
        "MemoryStats": {
            "RSS": rss, "Cache": 0, "Swap": swap, "MappedFile": 0, "Usage": rss, "MaxUsage": 0,
            "KernelUsage": 0, "KernelMaxUsage": 0, "Measured": MEASURED_MEMORY,
        },
        "CpuStats": {
            "SystemMode": system * 1000, "UserMode": user * 1000, "TotalTicks": (user + system) * 1000,
            "ThrottledPeriods": 0, "ThrottledTime": 0, "Percent": percent, "Measured": MEASURED_CPU,
        },
        "DeviceStats": None,
    }


def alloc_stats(runner: "AllocRunner", only_task: str = "") -> dict[str, Any]:
    now = time.time_ns()
    tasks: dict[str, Any] = {}
    all_pids: list[int] = []
    for name, tr in runner.task_runners.items():
        if only_task and name != only_task:
            continue
        pids = tr.driver.task_pids(tr.handle) if tr.handle and tr.driver and tr.state.state == "running" else []
        all_pids.extend(pids)
        tasks[name] = {"ResourceUsage": resource_usage(pids), "Timestamp": now, "Pids": None}
    return {"ResourceUsage": resource_usage(all_pids), "Tasks": tasks, "Timestamp": now}


def _disk(path: str) -> dict[str, Any]:
    usage = psutil.disk_usage(path)
    return {
        "Device": path, "Mountpoint": path, "Size": usage.total, "Used": usage.used,
        "Available": usage.free, "UsedPercent": usage.percent, "InodesUsedPercent": 0.0,
    }


def host_stats(alloc_dir: str) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    cpus = []
    for i, t in enumerate(psutil.cpu_times_percent(interval=None, percpu=True)):
        cpus.append({"CPU": f"cpu{i}", "User": t.user, "System": t.system, "Idle": t.idle, "Total": 100.0 - t.idle})
    disks = [_disk(p.mountpoint) for p in psutil.disk_partitions() if p.mountpoint == "/"]
    return {
        "Memory": {"Total": mem.total, "Available": mem.available, "Used": mem.used, "Free": mem.free},
        "CPU": cpus,
        "DiskStats": disks,
        "AllocDirStats": _disk(alloc_dir) if os.path.isdir(alloc_dir) else None,
        "DeviceStats": [],
        "Uptime": int(time.time() - psutil.boot_time()),
        "Timestamp": time.time_ns(),
        "CPUTicksConsumed": sum(c["Total"] for c in cpus),
    }

