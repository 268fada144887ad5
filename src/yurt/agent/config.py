"""Agent configuration: Nomad's agent config file format (HCL or JSON) and command-line flags.

Precedence, as in Nomad: defaults, then each `-config` file or directory in order, then flags.
Unknown keys are errors naming the file, the line and the key.
"""

import os
import re
import socket
from dataclasses import dataclass, field, fields
from typing import Any

from ..structs.durations import parse_duration

DEFAULT_HTTP_PORT = 4646


class AgentConfigError(Exception):
    """A config file or flag that cannot be used; the message names the file, line and key."""


@dataclass
class ServerSection:
    enabled: bool = False
    num_schedulers: int = 0
    heartbeat_grace: int = 0
    min_heartbeat_ttl: int = 0
    max_heartbeats_per_second: float = 0.0
    bootstrap_expect: int = 0
    # HA: the command log in an etcd cluster (docs/internals.md, state)
    state_backend: str = "sqlite"
    etcd_endpoints: list[str] = field(default_factory=list)
    etcd_prefix: str = "/yurt"
    etcd_lease_ttl: int = 0  # ns; 0 = the server's default


@dataclass
class ReservedSection:
    cpu: int = 0
    memory: int = 0
    disk: int = 0
    reserved_ports: str = ""


@dataclass
class ClientSection:
    enabled: bool = False
    servers: list[str] = field(default_factory=list)
    node_class: str = ""
    node_pool: str = "default"
    meta: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    reserved: ReservedSection = field(default_factory=ReservedSection)
    max_kill_timeout: int = 0
    cpu_total_compute: int = 0
    memory_total_mb: int = 0
    gc_interval: int = 0  # ns; 0 = Nomad's 1m
    gc_disk_usage_threshold: float = 80.0
    gc_inode_usage_threshold: float = 70.0
    gc_max_allocs: int = 50
    gc_parallel_destroys: int = 2
    host_volumes: dict[str, Any] = field(default_factory=dict)  # name -> HostVolumeConfig
    host_networks: dict[str, Any] = field(default_factory=dict)  # name -> ClientHostNetworkConfig


@dataclass
class AgentConfig:
    region: str = "global"
    datacenter: str = "dc1"
    name: str = ""
    data_dir: str = ""
    bind_addr: str = "0.0.0.0"
    http_port: int = DEFAULT_HTTP_PORT
    rpc_port: int = 4647  # advertised only (status/leader, members): several servers on one host differ here
    serf_port: int = 4648
    advertise_http: str = ""
    log_level: str = "INFO"
    dev_mode: bool = False
    server: ServerSection = field(default_factory=ServerSection)
    client: ClientSection = field(default_factory=ClientSection)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def node_name(self) -> str:
        return self.name or socket.gethostname()

    @property
    def http_address(self) -> str:
        """The address other agents and the CLI use to reach this agent's HTTP API."""
        if self.advertise_http:
            return self.advertise_http
        host = "127.0.0.1" if self.bind_addr in ("0.0.0.0", "::", "") else self.bind_addr
        return f"{host}:{self.http_port}"

    def plugin_enabled(self, name: str) -> bool:
        cfg = self.plugins.get(name, {}).get("config", {})
        return bool(cfg.get("enabled", False))


def dev_config() -> AgentConfig:
    """`agent -dev`: server and client in one process on loopback, raw_exec enabled."""
    cfg = AgentConfig(dev_mode=True, bind_addr="127.0.0.1")
    cfg.server.enabled = True
    cfg.client.enabled = True
    cfg.plugins["raw_exec"] = {"config": {"enabled": True}}
    return cfg


# ---- files ------------------------------------------------------------------------------------

_TOP_KEYS = {
    "region", "datacenter", "name", "data_dir", "bind_addr", "ports", "addresses", "advertise",
    "log_level", "log_json", "log_file", "server", "client", "plugin", "plugin_dir", "leave_on_interrupt",
    "leave_on_terminate", "enable_syslog", "disable_update_check", "acl", "tls", "telemetry", "consul",
    "vault", "ui", "limits", "autopilot",
}
# Blocks Nomad accepts that yurt reads but does not act on yet.
_ACCEPTED_IGNORED = {
    "addresses", "log_json", "log_file", "plugin_dir", "leave_on_interrupt", "leave_on_terminate",
    "enable_syslog", "disable_update_check", "acl", "tls", "telemetry", "consul", "vault", "ui",
    "limits", "autopilot",
}


def load_files(cfg: AgentConfig, paths: list[str]) -> AgentConfig:
    for path in paths:
        if os.path.isdir(path):
            entries = sorted(p for p in os.listdir(path) if p.endswith((".hcl", ".json")))
            for entry in entries:
                _load_file(cfg, os.path.join(path, entry))
        else:
            _load_file(cfg, path)
    return cfg


def _load_file(cfg: AgentConfig, path: str) -> None:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise AgentConfigError(f"Error loading configuration from {path}: {exc.strerror}") from None
    data = _parse_text(text, path)
    _apply_top(cfg, data, path, _line_finder(text))
    cfg.files.append(path)


def _parse_text(text: str, path: str) -> dict[str, Any]:
    if path.endswith(".json") or text.lstrip().startswith("{"):
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise AgentConfigError(f"{path}:{exc.lineno},{exc.colno}: {exc.msg}") from None
    import hcl2
    from hcl2.utils import SerializationOptions

    try:
        raw = hcl2.loads(text, serialization_options=SerializationOptions(strip_string_quotes=True))
    except Exception as exc:  # lark raises several exception types; all mean a syntax error
        line = getattr(exc, "line", "?")
        col = getattr(exc, "column", "?")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AgentConfigError(f"{path}:{line},{col}: syntax error: {first}") from None
    return _unwrap(raw)


def _unwrap(value: Any) -> Any:
    """python-hcl2 output -> plain dicts: single blocks unwrapped, labelled blocks keyed by label."""
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and v.get("__is_block__") for v in value):
            merged: dict[str, Any] = {}
            for block in value:
                merged.update(_unwrap(block))
            return merged
        if value and all(isinstance(v, dict) and len(v) == 1 and not v.get("__is_block__") for v in value):
            # labelled blocks: [{"label": {...}}]
            out: dict[str, Any] = {}
            for block in value:
                for label, body in block.items():
                    out[_strip_quotes(label)] = _unwrap(body)
            return out
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {_strip_quotes(k): _unwrap(v) for k, v in value.items() if k != "__is_block__"}
    return _strip_quotes(value) if isinstance(value, str) else value


def _strip_quotes(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _line_finder(text: str):
    """Best-effort line of a key: its first `key =` or `key {` in the file."""
    import re

    lines = text.splitlines()

    def find(key: str, after: str = "") -> int | str:
        """`after`: search from the first line containing this text (e.g. 'plugin "docker"')."""
        start = next((n for n, line in enumerate(lines) if after in line), 0) if after else 0
        pattern = re.compile(r'(^|[\s{])"?' + re.escape(key) + r'"?\s*[={:]')
        for number, line in enumerate(lines[start:], start + 1):
            if pattern.search(line):
                return number
        return "?"

    return find


def _unknown(path: str, find, key: str, where: str, valid) -> AgentConfigError:
    import difflib

    hint = difflib.get_close_matches(key, sorted(valid), n=1)
    suggestion = f' Did you mean "{hint[0]}"?' if hint else ""
    return AgentConfigError(f'{path}:{find(key)}: unexpected key "{key}" in {where}.{suggestion}')


def _apply_top(cfg: AgentConfig, data: dict[str, Any], path: str, find) -> None:
    for key, value in data.items():
        if key not in _TOP_KEYS:
            raise _unknown(path, find, key, "agent configuration", _TOP_KEYS)
        if key in _ACCEPTED_IGNORED:
            continue
        if key in ("region", "datacenter", "name", "data_dir", "bind_addr", "log_level"):
            setattr(cfg, key, _typed(str, value, path, find, key))
        elif key == "ports":
            ports = _block(value)
            cfg.http_port = _typed(int, ports.get("http", cfg.http_port), path, find, "http")
            cfg.rpc_port = _typed(int, ports.get("rpc", cfg.rpc_port), path, find, "rpc")
            cfg.serf_port = _typed(int, ports.get("serf", cfg.serf_port), path, find, "serf")
        elif key == "advertise":
            http = _block(value).get("http")
            if http:
                cfg.advertise_http = str(http)
        elif key == "server":
            block = _block(value)
            _apply_section(cfg.server, {k: v for k, v in block.items() if k != "etcd_endpoints"}, path, find,
                           "server", {"enabled", "num_schedulers", "heartbeat_grace", "min_heartbeat_ttl",
                                      "max_heartbeats_per_second", "bootstrap_expect", "encrypt", "server_join",
                                      "default_scheduler_config", *_HA_KEYS})
            _apply_ha(cfg.server, block, path, find)
        elif key == "client":
            _apply_client(cfg.client, _block(value), path, find)
        elif key == "plugin":
            _apply_plugins(cfg, _block(value), path, find)


_HA_KEYS = {"state_backend", "etcd_endpoints", "etcd_prefix", "etcd_lease_ttl"}


def _apply_ha(section: ServerSection, block: dict[str, Any], path: str, find) -> None:
    if "etcd_endpoints" in block:
        value = block["etcd_endpoints"]
        if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
            raise AgentConfigError(f"{path}:{find('etcd_endpoints')}: server.etcd_endpoints must be a non-empty "
                                   f"list of etcd client URLs, got {value!r}")
        section.etcd_endpoints = list(value)
    if section.state_backend not in ("sqlite", "etcd"):
        raise AgentConfigError(f'{path}:{find("state_backend")}: server.state_backend must be "sqlite" or "etcd", '
                               f"got {section.state_backend!r}")
    if section.state_backend == "etcd" and not section.etcd_endpoints:
        raise AgentConfigError(f'{path}:{find("state_backend")}: server.state_backend = "etcd" needs '
                               f"server.etcd_endpoints")


_PLUGIN_KEYS = {"config", "args"}


def _apply_plugins(cfg: AgentConfig, plugins: dict[str, Any], path: str, find) -> None:
    """`plugin "<name>" { config { ... } args = [...] }`: the config of a built-in driver is checked
    by the driver (`yurt.drivers.validate_plugin_config`); errors name the key and its line."""
    import re

    from ..drivers import validate_plugin_config

    for name, body in plugins.items():
        body = _block(body)
        anchor = f'"{name}"'
        for key in body:
            if key not in _PLUGIN_KEYS:
                raise _unknown(path, lambda k, a=anchor: find(k, after=a), key, f'plugin "{name}"', _PLUGIN_KEYS)
        config = _block(body.get("config"))
        errors = validate_plugin_config(name, config)
        if errors:
            named = re.search(r'"([\w.]+)(?:\[\d+\])?"', errors[0])
            line = find(named.group(1).rsplit(".", 1)[-1], after=anchor) if named else find("config", after=anchor)
            raise AgentConfigError(f'{path}:{line}: plugin "{name}": ' + "; ".join(errors))
        _check_fake_devices(name, config, path, lambda k, a=anchor: find(k, after=a))
        cfg.plugins.setdefault(name, {}).update({**body, "config": config})


_CLIENT_KEYS = {
    "enabled", "servers", "node_class", "node_pool", "meta", "options", "reserved", "max_kill_timeout",
    "cpu_total_compute", "memory_total_mb", "server_join", "host_volume", "host_network",
    "network_interface", "min_dynamic_port", "max_dynamic_port", "gc_interval", "gc_max_allocs",
    "gc_disk_usage_threshold", "gc_inode_usage_threshold", "gc_parallel_destroys", "drain_on_shutdown",
    "chroot_env", "cni_path", "bridge_network_name", "bridge_network_subnet", "artifact", "template",
    "state_dir", "alloc_dir", "no_host_uuid",
}


def _apply_client(section: ClientSection, data: dict[str, Any], path: str, find) -> None:
    for key, value in data.items():
        if key not in _CLIENT_KEYS:
            raise _unknown(path, find, key, "client", _CLIENT_KEYS)
        if key in ("meta", "options"):
            getattr(section, key).update({str(k): str(v) for k, v in _block(value).items()})
        elif key == "reserved":
            _apply_section(section.reserved, _block(value), path, find, "client.reserved",
                           {f.name for f in fields(ReservedSection)})
            _check_reserved_ports(section.reserved.reserved_ports, path, find)
        elif key == "host_volume":
            section.host_volumes.update(_host_volumes(value, path, find))
        elif key == "host_network":
            section.host_networks.update(_client_devices_call("parse_host_networks", value, path, find, key))
        elif key == "servers":
            if not isinstance(value, list):
                raise AgentConfigError(f'{path}:{find(key)}: client.servers must be a list, got {value!r}')
            section.servers = [str(v) for v in value]
        elif key in {f.name for f in fields(ClientSection)}:
            _set_field(section, key, value, path, find)


def _client_devices_call(fn: str, value: Any, path: str, find, key: str) -> Any:
    """client/devices.py parsers (fake devices, host networks); errors name file, line and field."""
    from ..client import devices

    try:
        return getattr(devices, fn)(value)
    except ValueError as exc:
        named = re.search(r'"([^"]+)"', str(exc))
        raise AgentConfigError(f"{path}:{find(named.group(1) if named else key)}: {key}: {exc}") from None


def _check_reserved_ports(spec: str, path: str, find) -> None:
    from ..structs.resources import parse_port_ranges

    try:
        parse_port_ranges(spec)
    except ValueError as exc:
        raise AgentConfigError(f"{path}:{find('reserved_ports')}: client.reserved.{exc}") from None


def _check_fake_devices(name: str, config: dict[str, Any], path: str, find) -> None:
    from ..client.devices import FAKE_DEVICE_PLUGIN

    if name == FAKE_DEVICE_PLUGIN:
        _client_devices_call("parse_fake_devices", config, path, find, f'plugin "{name}"')


def _host_volumes(value: Any, path: str, find) -> dict[str, Any]:
    from ..client.volumes import VolumeError, parse_host_volumes

    volumes: dict[str, Any] = {}
    for name, body in _block(value).items():
        try:
            volumes.update(parse_host_volumes({name: body}))
        except VolumeError as exc:
            raise AgentConfigError(f"{path}:{find(name)}: client.{exc}") from None
    return volumes


def _apply_section(section: Any, data: dict[str, Any], path: str, find, where: str, valid: set[str]) -> None:
    known = {f.name for f in fields(section)}
    for key, value in data.items():
        if key not in valid:
            raise _unknown(path, find, key, where, valid)
        if key in known:
            _set_field(section, key, value, path, find)


def _set_field(section: Any, key: str, value: Any, path: str, find) -> None:
    current = getattr(section, key)
    if key.endswith(("_ttl", "_grace", "_timeout")) or key == "gc_interval":
        try:
            setattr(section, key, parse_duration(value))
        except ValueError as exc:
            raise AgentConfigError(f"{path}:{find(key)}: {key}: {exc}") from None
        return
    setattr(section, key, _typed(type(current), value, path, find, key))


def _typed(typ: type, value: Any, path: str, find, key: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif typ in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return typ(value)
        if isinstance(value, str):
            try:
                return typ(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise AgentConfigError(f"{path}:{find(key)}: {key}: expected {typ.__name__}, got {value!r}")


def _block(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(_block(item))
        return merged
    return value if isinstance(value, dict) else {}
