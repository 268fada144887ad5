"""The jobs the scenarios submit, as Nomad API JSON (`{"Job": ...}` bodies for PUT /v1/jobs)."""

from __future__ import annotations

from typing import Any

# Tiny tasks: 200 per simulated node fit in SIM_NODE_CPU / SIM_NODE_MEMORY_MB (bench/simnode.py).
TINY_CPU = 20
TINY_MEMORY_MB = 10


def _task(name: str, driver: str, config: dict[str, Any], cpu: int, memory_mb: int) -> dict[str, Any]:
    return {"Name": name, "Driver": driver, "Config": config,
            "Resources": {"CPU": cpu, "MemoryMB": memory_mb}}


def mock_job(job_id: str, count: int, job_type: str = "service", run_for: str = "1h") -> dict[str, Any]:
    """A job of `count` tiny mock_driver tasks that run for `run_for`."""
    group: dict[str, Any] = {
        "Name": "g",
        "Count": count,
        "Tasks": [_task("t", "mock_driver", {"run_for": run_for}, TINY_CPU, TINY_MEMORY_MB)],
        "EphemeralDisk": {"SizeMB": 10},
    }
    if job_type == "service":
        # no deployment watcher work: the bench measures placement, not rollouts
        group["Update"] = {"MaxParallel": 0}
    job = {"ID": job_id, "Name": job_id, "Type": job_type, "Datacenters": ["*"], "TaskGroups": [group]}
    if job_type == "system":
        group.pop("Count")
    return {"Job": job}


def raw_exec_job(job_id: str, command: str = "/bin/sleep", args: tuple[str, ...] = ("300",)) -> dict[str, Any]:
    task = _task("t", "raw_exec", {"command": command, "args": list(args)}, 100, 32)
    group = {"Name": "g", "Count": 1, "Tasks": [task], "EphemeralDisk": {"SizeMB": 10},
             "Update": {"MaxParallel": 0}}
    return {"Job": {"ID": job_id, "Name": job_id, "Type": "service", "Datacenters": ["*"],
                    "TaskGroups": [group]}}
