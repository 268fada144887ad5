"""The docker driver's task `config` keys (Nomad's taskConfigSpec) and its plugin config.

`validate_task_config(config)` returns Nomad-style messages, each naming the key; nested
blocks (`auth`, `mount`, `logging`) are checked key by key too.
"""

from dataclasses import dataclass, field
from typing import Any

from yurt.drivers.base import check_keys

NUMBER = (int, float)
BLOCK = (dict, list)

TASK_CONFIG_SPEC: dict[str, Any] = {
    "image": str,
    "args": list,
    "command": str,
    "entrypoint": list,
    "auth": BLOCK,
    "auth_soft_fail": bool,
    "force_pull": bool,
    "image_pull_timeout": str,
    "load": str,
    "ports": list,
    "port_map": BLOCK,
    "network_mode": str,
    "network_aliases": list,
    "hostname": str,
    "ipv4_address": str,
    "ipv6_address": str,
    "advertise_ipv6_address": bool,
    "mac_address": str,
    "dns_servers": list,
    "dns_search_domains": list,
    "dns_options": list,
    "extra_hosts": list,
    "labels": BLOCK,
    "logging": BLOCK,
    "mount": BLOCK,
    "mounts": BLOCK,
    "volumes": list,
    "volume_driver": str,
    "devices": BLOCK,
    "privileged": bool,
    "cap_add": list,
    "cap_drop": list,
    "security_opt": list,
    "sysctl": BLOCK,
    "ulimit": BLOCK,
    "cpu_hard_limit": bool,
    "cpu_cfs_period": int,
    "cpuset_cpus": str,
    "memory_hard_limit": int,
    "oom_score_adj": int,
    "pids_limit": int,
    "shm_size": int,
    "storage_opt": BLOCK,
    "readonly_rootfs": bool,
    "init": bool,
    "interactive": bool,
    "tty": bool,
    "ipc_mode": str,
    "pid_mode": str,
    "uts_mode": str,
    "userns_mode": str,
    "cgroupns": str,
    "group_add": list,
    "runtime": str,
    "isolation": str,
    "healthchecks": BLOCK,
    "work_dir": str,
    "container_exists_attempts": int,
}

AUTH_SPEC: dict[str, Any] = {"username": str, "password": str, "email": str, "server_address": str}
LOGGING_SPEC: dict[str, Any] = {"type": str, "driver": str, "config": BLOCK}
MOUNT_SPEC: dict[str, Any] = {
    "type": str,
    "target": str,
    "source": str,
    "readonly": bool,
    "bind_options": BLOCK,
    "tmpfs_options": BLOCK,
    "volume_options": BLOCK,
}
MOUNT_TYPES = ("bind", "tmpfs", "volume")
LIST_OF_STRINGS = ("args", "entrypoint", "ports", "volumes", "dns_servers", "dns_search_domains", "dns_options",
                   "extra_hosts", "cap_add", "cap_drop", "security_opt", "group_add", "network_aliases")


def blocks(value: Any) -> list[dict[str, Any]]:
    """A block given once (a dict) or repeated (a list of dicts) as a list of dicts."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)]


def single_block(value: Any) -> dict[str, Any]:
    found = blocks(value)
    merged: dict[str, Any] = {}
    for item in found:
        merged.update(item)
    return merged


def _prefixed(prefix: str, errors: list[str]) -> list[str]:
    return [e.replace('"', f'"{prefix}.', 1) for e in errors]


def _list_errors(config: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for key in LIST_OF_STRINGS:
        for i, item in enumerate(config.get(key) or []) if isinstance(config.get(key), list) else ():
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                errors.append(f'Incorrect attribute value type for "{key}[{i}]": a string is required')
    return errors


def _mount_errors(config: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for key in ("mount", "mounts"):
        for i, mount in enumerate(blocks(config.get(key))):
            errors += _prefixed(f"{key}[{i}]", check_keys(mount, MOUNT_SPEC))
            kind = mount.get("type", "volume")
            if kind not in MOUNT_TYPES:
                errors.append(f'Invalid value for "{key}[{i}].type": "{kind}" is not one of {", ".join(MOUNT_TYPES)}')
            if not mount.get("target"):
                errors.append(f'Missing required argument "{key}[{i}].target"')
    return errors


def validate_task_config(config: dict[str, Any]) -> list[str]:
    errors = check_keys(config, TASK_CONFIG_SPEC, required=("image",))
    errors += _list_errors(config)
    errors += _prefixed("auth", check_keys(single_block(config.get("auth")), AUTH_SPEC))
    errors += _prefixed("logging", check_keys(single_block(config.get("logging")), LOGGING_SPEC))
    errors += _mount_errors(config)
    for i, volume in enumerate(config.get("volumes") or [] if isinstance(config.get("volumes"), list) else []):
        if isinstance(volume, str) and len(volume.split(":")) not in (2, 3):
            errors.append(f'Invalid value for "volumes[{i}]": "{volume}" is not "host_path:container_path[:mode]"')
    if "memory_hard_limit" in config and isinstance(config["memory_hard_limit"], int):
        if config["memory_hard_limit"] < 0:
            errors.append(f'Invalid value for "memory_hard_limit": {config["memory_hard_limit"]} is negative')
    return errors


PLUGIN_CONFIG_SPEC: dict[str, Any] = {
    "endpoint": str,
    "auth": BLOCK,
    "tls": BLOCK,
    "extra_labels": list,
    "logging": BLOCK,
    "gc": BLOCK,
    "volumes": BLOCK,
    "allow_privileged": bool,
    "allow_caps": list,
    "allow_runtimes": list,
    "nvidia_runtime": str,
    "infra_image": str,
    "infra_image_pull_timeout": str,
    "image_pull_timeout": str,
    "pull_activity_timeout": str,
    "pids_limit": int,
    "oom_score_adj": int,
    "disable_log_collection": bool,
    "allowed_modes": BLOCK,
    "container_exists_attempts": int,
    "windows_allow_insecure_container_admin": bool,
}
PLUGIN_BLOCK_SPECS: dict[str, dict[str, Any]] = {
    "auth": {"config": str, "helper": str},
    "tls": {"cert": str, "key": str, "ca": str},
    "logging": {"type": str, "config": BLOCK},
    "gc": {"image": bool, "image_delay": str, "container": bool, "dangling_containers": BLOCK},
    "gc.dangling_containers": {"enabled": bool, "dry_run": bool, "period": str, "creation_grace": str},
    "volumes": {"enabled": bool, "selinuxlabel": str},
    "allowed_modes": {"network": list, "pid": list, "ipc": list},
}
# Nomad's defaults and minimums (drivers/docker/config.go)
MINUTE_S = 60.0
DEFAULT_INFRA_IMAGE = "registry.k8s.io/pause-amd64:3.3"
DEFAULT_DURATIONS_S = {
    "gc.image_delay": 3 * MINUTE_S,
    "gc.dangling_containers.period": 5 * MINUTE_S,
    "gc.dangling_containers.creation_grace": 5 * MINUTE_S,
    "pull_activity_timeout": 2 * MINUTE_S,
    "image_pull_timeout": 5 * MINUTE_S,
    "infra_image_pull_timeout": 5 * MINUTE_S,
}
MINIMUM_DURATIONS_S = {"gc.dangling_containers.creation_grace": MINUTE_S, "pull_activity_timeout": MINUTE_S}


def _duration_s(value: Any, key: str) -> float:
    """Seconds from Go duration text; ValueError names the key."""
    from yurt.structs.durations import parse_duration

    try:
        return parse_duration(value) / 1e9
    except (ValueError, TypeError) as exc:
        raise ValueError(f'Invalid value for "{key}": {exc}') from None


def _plugin_blocks(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The nested blocks of the plugin config by dotted name ("gc", "gc.dangling_containers", ...)."""
    found = {name: single_block(config.get(name)) for name in ("auth", "tls", "logging", "gc", "volumes", "allowed_modes")}
    found["gc.dangling_containers"] = single_block(found["gc"].get("dangling_containers"))
    return found


def validate_plugin_config(config: dict[str, Any]) -> list[str]:
    """Errors in `plugin "docker" { config { ... } }`, each naming the (dotted) key."""
    errors = check_keys(config, PLUGIN_CONFIG_SPEC)
    blocks_by_name = _plugin_blocks(config)
    for name, spec in PLUGIN_BLOCK_SPECS.items():
        errors += _prefixed(name, check_keys(blocks_by_name[name], spec))
    for dotted in DEFAULT_DURATIONS_S:
        block, _, key = dotted.rpartition(".")
        value = (blocks_by_name[block] if block else config).get(key)
        if value is None:
            continue
        try:
            seconds = _duration_s(value, dotted)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        minimum = MINIMUM_DURATIONS_S.get(dotted)
        if minimum is not None and seconds < minimum:
            errors.append(f'Invalid value for "{dotted}": {value} is less than minimum, 1m0s')
    return errors


@dataclass
class DockerPluginConfig:
    """`plugin "docker" { config { ... } }` on the client (the keys yurt honours)."""

    endpoint: str = ""  # "" = DOCKER_HOST or the default unix socket
    allow_privileged: bool = False
    volumes_enabled: bool = False
    allow_runtimes: list[str] = field(default_factory=lambda: ["runc", "nvidia"])
    allow_caps: list[str] = field(default_factory=list)  # empty = Nomad's default list, not enforced here
    extra_labels: list[str] = field(default_factory=list)
    image_pull_timeout_s: float = 300.0
    pull_activity_timeout_s: float = 120.0
    infra_image: str = DEFAULT_INFRA_IMAGE
    gc_container: bool = True
    gc_image: bool = True
    dangling_enabled: bool = True
    dangling_dry_run: bool = False
    dangling_period_s: float = 300.0
    dangling_creation_grace_s: float = 300.0
    disable_log_collection: bool = False

    @classmethod
    def from_plugin_config(cls, config: dict[str, Any] | None) -> "DockerPluginConfig":
        """Raises ValueError (naming the key) for a config `validate_plugin_config` rejects."""
        config = config or {}
        errors = validate_plugin_config(config)
        if errors:
            raise ValueError("; ".join(errors))
        found = _plugin_blocks(config)

        def seconds(dotted: str) -> float:
            block, _, key = dotted.rpartition(".")
            value = (found[block] if block else config).get(key)
            return DEFAULT_DURATIONS_S[dotted] if value is None else _duration_s(value, dotted)

        dangling = found["gc.dangling_containers"]
        return cls(
            endpoint=str(config.get("endpoint") or ""),
            allow_privileged=bool(config.get("allow_privileged", False)),
            volumes_enabled=bool(found["volumes"].get("enabled", False)),
            allow_runtimes=list(config.get("allow_runtimes") or ["runc", "nvidia"]),
            allow_caps=[str(c) for c in config.get("allow_caps") or []],
            extra_labels=list(config.get("extra_labels") or []),
            image_pull_timeout_s=seconds("image_pull_timeout"),
            pull_activity_timeout_s=seconds("pull_activity_timeout"),
            infra_image=str(config.get("infra_image") or DEFAULT_INFRA_IMAGE),
            gc_container=bool(found["gc"].get("container", True)),
            gc_image=bool(found["gc"].get("image", True)),
            dangling_enabled=bool(dangling.get("enabled", True)),
            dangling_dry_run=bool(dangling.get("dry_run", False)),
            dangling_period_s=seconds("gc.dangling_containers.period"),
            dangling_creation_grace_s=seconds("gc.dangling_containers.creation_grace"),
            disable_log_collection=bool(config.get("disable_log_collection", False)),
        )
