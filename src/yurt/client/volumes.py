"""Host volumes: the client's `host_volume "name" { path, read_only }` config, the node's
`HostVolumes` fingerprint, and a task's `volume_mount`s resolved into driver mounts.

Resolution follows Nomad's volume hook: every group `volume` of type `host` must name a host
volume this node offers (`per_alloc` volumes add the alloc's `[index]` to the source); each
`volume_mount` becomes a bind mount of the host volume's path, read-only when the host volume,
the group volume or the mount says so. Other volume types (csi) are left to their own hooks.
"""

import os
import re
from dataclasses import dataclass
from typing import Any

from yurt.drivers.base import MountConfig
from yurt.structs.alloc import Allocation
from yurt.structs.job import Task

PROPAGATION_MODES = ("private", "host-to-task", "bidirectional")


class VolumeError(Exception):
    """A host volume config or a task's volume mounts that cannot be used."""


@dataclass(frozen=True)
class HostVolumeConfig:
    path: str
    read_only: bool = False


def parse_host_volumes(blocks: dict[str, Any]) -> dict[str, HostVolumeConfig]:
    """The agent config's `host_volume "name" { path = "...", read_only = bool }` blocks."""
    volumes: dict[str, HostVolumeConfig] = {}
    for name, body in (blocks or {}).items():
        if isinstance(body, list) and all(isinstance(item, dict) for item in body):  # JSON's block lists
            body = {k: v for item in body for k, v in item.items()}
        if not isinstance(body, dict):
            raise VolumeError(f'host_volume "{name}": expected a block')
        unknown = sorted(set(body) - {"path", "read_only"})
        if unknown:
            raise VolumeError(f'host_volume "{name}": unexpected key "{unknown[0]}"')
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise VolumeError(f'host_volume "{name}": path is required')
        if not os.path.isabs(path):
            raise VolumeError(f'host_volume "{name}": path "{path}" must be absolute')
        read_only = body.get("read_only", False)
        if isinstance(read_only, str) and read_only.lower() in ("true", "false"):
            read_only = read_only.lower() == "true"
        if not isinstance(read_only, bool):
            raise VolumeError(f'host_volume "{name}": read_only: expected bool, got {read_only!r}')
        volumes[name] = HostVolumeConfig(path=path, read_only=read_only)
    return volumes


def node_host_volumes(volumes: dict[str, HostVolumeConfig]) -> dict[str, dict[str, Any]] | None:
    """`Node.HostVolumes` in Nomad's JSON shape: `{"name": {"Path": ..., "ReadOnly": ...}}`."""
    if not volumes:
        return None
    return {name: {"Path": v.path, "ReadOnly": v.read_only} for name, v in sorted(volumes.items())}


def _alloc_index_suffix(alloc_name: str) -> str:
    match = re.search(r"\[\d+\]$", alloc_name)
    return match.group(0) if match else ""


def _host_source(request: dict[str, Any], alloc: Allocation) -> str:
    source = str(request.get("Source") or "")
    return source + _alloc_index_suffix(alloc.name) if request.get("PerAlloc") else source


def host_volume_mounts(alloc: Allocation, task: Task, node_volumes: dict[str, Any] | None) -> list[MountConfig]:
    """The task's `volume_mount`s as driver mounts; VolumeError names what is missing."""
    group = alloc.job.lookup_task_group(alloc.task_group) if alloc.job else None
    requests: dict[str, Any] = (group.volumes if group else None) or {}
    offered = node_volumes or {}
    missing = [
        _host_source(req, alloc) for req in requests.values()
        if req.get("Type", "host") == "host" and _host_source(req, alloc) not in offered
    ]
    if missing:
        raise VolumeError(f"host volume validation error: missing {', '.join(sorted(missing))}")
    mounts = []
    for mount in task.volume_mounts or []:
        name = mount.get("Volume", "")
        request = requests.get(name)
        if request is None:
            raise VolumeError(f"No group volume declaration found named: {name}")
        if request.get("Type", "host") != "host":
            continue
        host = offered[_host_source(request, alloc)]
        propagation = mount.get("PropagationMode") or "private"
        if propagation not in PROPAGATION_MODES:
            raise VolumeError(f'volume_mount "{name}": propagation_mode "{propagation}" is not one of '
                              f"{', '.join(PROPAGATION_MODES)}")
        mounts.append(MountConfig(
            task_path=str(mount.get("Destination") or ""),
            host_path=str(host.get("Path") or ""),
            readonly=bool(host.get("ReadOnly") or request.get("ReadOnly") or mount.get("ReadOnly")),
            propagation_mode=propagation,
        ))
    return mounts
