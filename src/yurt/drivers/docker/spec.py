"""From a `TaskConfig` to the Engine API's create-container parameters (pure: no engine calls).

The task directories are bind-mounted as Nomad does: `<alloc>/alloc` at `/alloc`,
`<task>/local` at `/local`, `<task>/secrets` at `/secrets`. Ports, resources and the job's
names are read from the task environment the client builds (NOMAD_PORT_<label>,
NOMAD_HOST_PORT_<label>, NOMAD_HOST_IP_<label>, NOMAD_JOB_NAME, ...); resources from the
TaskConfig's cpu_shares / memory_mb / memory_max_mb, else NOMAD_CPU_LIMIT / NOMAD_MEMORY_LIMIT /
NOMAD_MEMORY_MAX_LIMIT.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Any

from yurt.drivers.base import DriverError, TaskConfig

from .config import DockerPluginConfig, blocks, single_block

LABEL_PREFIX = "com.hashicorp.nomad."
LABEL_ALLOC_ID = LABEL_PREFIX + "alloc_id"
LABEL_JOB_NAME = LABEL_PREFIX + "job_name"
LABEL_TASK_NAME = LABEL_PREFIX + "task_name"
LABEL_ALLOC_ROOT = "io.yurt.client.alloc_root"  # <data_dir>/alloc of the client that runs it
ENV_LABELS = {
    "job_id": "NOMAD_JOB_ID",
    "task_group_name": "NOMAD_GROUP_NAME",
    "namespace": "NOMAD_NAMESPACE",
}
CONTAINER_DIRS = {"NOMAD_ALLOC_DIR": "/alloc", "NOMAD_TASK_DIR": "/local", "NOMAD_SECRETS_DIR": "/secrets"}
TINI_GROUP_ENV = "TINI_KILL_PROCESS_GROUP"
MB = 1024 * 1024


@dataclass
class ContainerSpec:
    name: str
    image: str
    create: dict[str, Any] = field(default_factory=dict)  # api.create_container kwargs, without host_config
    host_config: dict[str, Any] = field(default_factory=dict)  # api.create_host_config kwargs


def container_name(cfg: TaskConfig) -> str:
    return f"{cfg.task_name}-{cfg.alloc_id}"


def env_label(label: str) -> str:
    """A port label as it appears in NOMAD_PORT_<label> (non-alphanumerics become `_`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", label)


def container_env(cfg: TaskConfig, init: bool = False) -> dict[str, str]:
    """The task env, minus variables inherited from the client's own environment (Nomad does
    not pass the host's env into a container), with the task dirs as the container sees them."""
    env = {
        key: value
        for key, value in cfg.env.items()
        if key.startswith("NOMAD_") or os.environ.get(key) != value
    }
    for key, inside in CONTAINER_DIRS.items():
        env[key] = inside
    if init:
        env.setdefault(TINI_GROUP_ENV, "1")  # signals reach the task's whole process group
    return env


def container_labels(cfg: TaskConfig, plugin: DockerPluginConfig) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in single_block(cfg.config.get("labels")).items()}
    labels[LABEL_ALLOC_ID] = cfg.alloc_id
    labels[LABEL_TASK_NAME] = cfg.task_name
    labels[LABEL_JOB_NAME] = cfg.env.get("NOMAD_JOB_NAME", "")
    labels[LABEL_ALLOC_ROOT] = os.path.dirname(os.path.normpath(cfg.alloc_dir))
    for name, var in ENV_LABELS.items():
        if var in cfg.env and (name in plugin.extra_labels or "*" in plugin.extra_labels):
            labels[LABEL_PREFIX + name] = cfg.env[var]
    return labels


def port_bindings(cfg: TaskConfig) -> tuple[list[tuple[int, str]], dict[str, list[tuple[str, int]]]]:
    """`ports = ["http"]` -> exposed container ports and their host bindings (tcp and udp)."""
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, list[tuple[str, int]]] = {}
    for label in cfg.config.get("ports") or []:
        var = env_label(str(label))
        host_port = cfg.env.get(f"NOMAD_HOST_PORT_{var}")
        if not host_port:
            raise DriverError(f'Port "{label}" not found, check network block (config "ports")')
        inside = int(cfg.env.get(f"NOMAD_PORT_{var}") or host_port)
        host_ip = cfg.env.get(f"NOMAD_HOST_IP_{var}") or "0.0.0.0"
        for proto in ("tcp", "udp"):
            exposed.append((inside, proto))
            bindings.setdefault(f"{inside}/{proto}", []).append((host_ip, int(host_port)))
    return exposed, bindings


def _host_path(cfg: TaskConfig, path: str, plugin: DockerPluginConfig, key: str) -> str:
    if os.path.isabs(path):
        if not plugin.volumes_enabled:
            raise DriverError(f'{key}: absolute host path "{path}" needs volumes enabled in the docker plugin config')
        return path
    resolved = os.path.normpath(os.path.join(cfg.task_dir, path))
    alloc_root = os.path.normpath(cfg.alloc_dir)
    if not plugin.volumes_enabled and not resolved.startswith(alloc_root + os.sep):
        raise DriverError(f'{key}: host path "{path}" escapes the allocation directory')
    return resolved


def task_binds(cfg: TaskConfig, plugin: DockerPluginConfig) -> list[str]:
    """The alloc/local/secrets dirs plus `volumes` as `host:container[:mode]` strings."""
    binds = [
        f"{os.path.join(cfg.alloc_dir, 'alloc')}:/alloc",
        f"{os.path.join(cfg.task_dir, 'local')}:/local",
        f"{os.path.join(cfg.task_dir, 'secrets')}:/secrets",
    ]
    for i, volume in enumerate(cfg.config.get("volumes") or []):
        parts = str(volume).split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise DriverError(f'volumes[{i}]: "{volume}" is not "host_path:container_path[:mode]"')
        parts[0] = _host_path(cfg, parts[0], plugin, f"volumes[{i}]")
        binds.append(":".join(parts))
    return binds


BIND_PROPAGATION = {"private": "rprivate", "host-to-task": "rslave", "bidirectional": "rshared"}


def task_mounts(cfg: TaskConfig, plugin: DockerPluginConfig) -> list[Any]:
    from docker.types import Mount

    mounts = []
    for i, block in enumerate([*blocks(cfg.config.get("mount")), *blocks(cfg.config.get("mounts"))]):
        kind = block.get("type", "volume")
        source = block.get("source", "")
        kwargs: dict[str, Any] = {"read_only": bool(block.get("readonly", False))}
        if kind == "bind":
            source = _host_path(cfg, source, plugin, f"mount[{i}].source")
            kwargs["propagation"] = single_block(block.get("bind_options")).get("propagation") or None
        elif kind == "tmpfs":
            tmpfs = single_block(block.get("tmpfs_options"))
            kwargs["tmpfs_size"] = tmpfs.get("size")
            kwargs["tmpfs_mode"] = tmpfs.get("mode")
            source = None
        elif kind == "volume":
            if not plugin.volumes_enabled and single_block(block.get("volume_options")).get("driver_config"):
                raise DriverError(f"mount[{i}]: volume drivers need volumes enabled in the docker plugin config")
            options = single_block(block.get("volume_options"))
            driver = single_block(options.get("driver_config"))
            kwargs["no_copy"] = bool(options.get("no_copy", False))
            kwargs["labels"] = single_block(options.get("labels")) or None
            kwargs["driver_config"] = _driver_config(driver)
        mounts.append(Mount(block["target"], source, type=kind, **kwargs))
    for volume in cfg.mounts:  # host volumes (`volume_mount`), as Nomad's docker driver binds them
        propagation = BIND_PROPAGATION.get(volume.propagation_mode, "rprivate")
        mounts.append(Mount(volume.task_path, volume.host_path, type="bind", read_only=volume.readonly,
                            propagation=propagation))
    return mounts


def _driver_config(driver: dict[str, Any]) -> Any:
    if not driver.get("name"):
        return None
    from docker.types import DriverConfig

    return DriverConfig(driver["name"], single_block(driver.get("options")) or None)


def memory_limits(cfg: TaskConfig) -> dict[str, int]:
    """`memory` is the limit; with `memory_hard_limit` or `memory_max` it is the reservation."""
    memory_mb = cfg.memory_mb or int(cfg.env.get("NOMAD_MEMORY_LIMIT") or 0)
    memory_max_mb = cfg.memory_max_mb or int(cfg.env.get("NOMAD_MEMORY_MAX_LIMIT") or 0)
    hard_mb = int(cfg.config.get("memory_hard_limit") or 0) or memory_max_mb
    limits: dict[str, int] = {}
    if hard_mb and hard_mb > memory_mb:
        limits["mem_limit"] = hard_mb * MB
        if memory_mb:
            limits["mem_reservation"] = memory_mb * MB
    elif memory_mb:
        limits["mem_limit"] = memory_mb * MB
    if "mem_limit" in limits:
        limits["memswap_limit"] = limits["mem_limit"]  # no swap beyond the limit, as Nomad
    return limits


def cpu_limits(cfg: TaskConfig, total_compute_mhz: int) -> dict[str, int]:
    cpu = cfg.cpu_shares or int(cfg.env.get("NOMAD_CPU_LIMIT") or 0)
    limits: dict[str, int] = {}
    if cpu:
        limits["cpu_shares"] = max(2, cpu)
    if cfg.config.get("cpu_hard_limit") and cpu and total_compute_mhz:
        period = int(cfg.config.get("cpu_cfs_period") or 100_000)
        cores = os.cpu_count() or 1
        limits["cpu_period"] = period
        limits["cpu_quota"] = max(1000, int(cpu / total_compute_mhz * period * cores))
    if cfg.config.get("cpuset_cpus"):
        limits["cpuset_cpus"] = cfg.config["cpuset_cpus"]
    return limits


def _command(config: dict[str, Any]) -> list[str] | None:
    args = [str(a) for a in config.get("args") or []]
    if config.get("command"):
        return [str(config["command"]), *args]
    return args or None


def _security_settings(cfg: TaskConfig, plugin: DockerPluginConfig) -> dict[str, Any]:
    config = cfg.config
    if config.get("privileged") and not plugin.allow_privileged:
        raise DriverError(
            'privileged = true: the docker plugin config does not allow privileged containers (allow_privileged)'
        )
    runtime = config.get("runtime")
    if runtime and runtime not in plugin.allow_runtimes:
        raise DriverError(f'runtime "{runtime}" is not allowed (allow_runtimes: {", ".join(plugin.allow_runtimes)})')
    settings: dict[str, Any] = {
        "privileged": bool(config.get("privileged", False)),
        "cap_add": config.get("cap_add") or None,
        "cap_drop": config.get("cap_drop") or None,
        "security_opt": config.get("security_opt") or None,
        "runtime": runtime or None,
        "group_add": config.get("group_add") or None,
        "oom_score_adj": config.get("oom_score_adj"),
        "read_only": bool(config.get("readonly_rootfs", False)) or None,
        "init": bool(config.get("init", False)) or None,
    }
    return settings


def _namespace_settings(config: dict[str, Any]) -> dict[str, Any]:
    ulimits = None
    if config.get("ulimit"):
        from docker.types import Ulimit

        ulimits = []
        for name, value in single_block(config["ulimit"]).items():
            soft, _, hard = str(value).partition(":")
            ulimits.append(Ulimit(name=name, soft=int(soft), hard=int(hard or soft)))
    return {
        "network_mode": config.get("network_mode") or None,
        "ipc_mode": config.get("ipc_mode") or None,
        "pid_mode": config.get("pid_mode") or None,
        "uts_mode": config.get("uts_mode") or None,
        "userns_mode": config.get("userns_mode") or None,
        "cgroupns": config.get("cgroupns") or None,
        "dns": config.get("dns_servers") or None,
        "dns_search": config.get("dns_search_domains") or None,
        "dns_opt": config.get("dns_options") or None,
        "extra_hosts": _extra_hosts(config.get("extra_hosts")),
        "sysctls": {str(k): str(v) for k, v in single_block(config.get("sysctl")).items()} or None,
        "ulimits": ulimits,
        "pids_limit": config.get("pids_limit") or None,
        "shm_size": config.get("shm_size") or None,
        "storage_opt": single_block(config.get("storage_opt")) or None,
        "isolation": config.get("isolation") or None,
        "devices": _devices(config.get("devices")),
        "log_config": _log_config(config.get("logging")),
    }


def _extra_hosts(hosts: list[str] | None) -> dict[str, str] | None:
    if not hosts:
        return None
    result = {}
    for entry in hosts:
        name, _, address = str(entry).partition(":")
        result[name] = address
    return result


def _devices(value: Any) -> list[str] | None:
    found = blocks(value)
    if not found:
        return None
    return [
        f"{d['host_path']}:{d.get('container_path') or d['host_path']}:{d.get('cgroup_permissions') or 'rwm'}"
        for d in found
    ]


def _log_config(value: Any) -> dict[str, Any] | None:
    block = single_block(value)
    kind = block.get("type") or block.get("driver")
    if not kind:
        return None
    return {"type": kind, "config": {str(k): str(v) for k, v in single_block(block.get("config")).items()}}


def build_container_spec(
    cfg: TaskConfig, plugin: DockerPluginConfig, image: str, total_compute_mhz: int = 0
) -> ContainerSpec:
    """All create-container parameters for the task; DriverError names a bad key or value."""
    config = cfg.config
    network_mode = config.get("network_mode") or ""
    exposed, bindings = port_bindings(cfg)
    if network_mode == "host":
        exposed, bindings = [], {}
    host_config = {
        "binds": task_binds(cfg, plugin),
        "mounts": task_mounts(cfg, plugin) or None,
        "port_bindings": bindings or None,
        **memory_limits(cfg),
        **cpu_limits(cfg, total_compute_mhz),
        **_security_settings(cfg, plugin),
        **_namespace_settings(config),
    }
    init = bool(config.get("init", False))
    create = {
        "command": _command(config),
        "entrypoint": [str(e) for e in config["entrypoint"]] if config.get("entrypoint") else None,
        "environment": container_env(cfg, init=init),
        "labels": container_labels(cfg, plugin),
        "working_dir": config.get("work_dir") or None,
        "hostname": config.get("hostname") or None,
        "ports": exposed or None,
        "tty": bool(config.get("tty", False)),
        "stdin_open": bool(config.get("interactive", False)),
        "mac_address": config.get("mac_address") or None,
        "user": cfg.user or None,
    }
    host_config["volume_driver"] = config.get("volume_driver") or None
    host_config = {k: v for k, v in host_config.items() if v is not None}
    create = {k: v for k, v in create.items() if v is not None}
    return ContainerSpec(name=container_name(cfg), image=image, create=create, host_config=host_config)


def parse_duration_s(text: str, key: str) -> float:
    """A Go duration such as "5m", "1m30s" or "500ms" in seconds; DriverError names the key."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise DriverError(f'invalid duration "{text}" for "{key}"')
    return sum(float(n) * units[u] for n, u in parts)
