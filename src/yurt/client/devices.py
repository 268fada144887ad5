"""Client side of devices and host networks.

Fake devices: yurt has no device plugins, so tests and dev clusters declare devices in the
agent config; they are fingerprinted into `NodeResources.Devices` exactly as a plugin's would be:

    plugin "yurt-fake-device" {
      config {
        device "nvidia/gpu/Tesla T4" {      # vendor/type/model, all three required
          count = 2                         # instances (default 1, or len(ids))
          ids   = ["GPU-a", "GPU-b"]        # optional instance IDs (default "<type>-<n>")
          attributes { memory = "16 GiB" }  # unit-aware values, as plugin attributes
        }
      }
    }

A task gets its assigned instances as `YURT_DEVICE_<TYPE>=id1,id2` (type upper-cased,
non-alphanumerics as `_`), and `NVIDIA_VISIBLE_DEVICES` for nvidia GPUs as Nomad's nvidia
plugin sets it.

Host networks: `client { host_network "name" { cidr | interface, reserved_ports } }` becomes
`Node.HostNetworks[name]` and one `NodeResources.NodeNetworks[].Addresses[]` entry with
`Alias = name` per matching interface address; the node's main address has alias "default".
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from yurt.structs import Node, evolve
from yurt.structs.node import (
    ClientHostNetworkConfig,
    NodeDevice,
    NodeDeviceResource,
    NodeNetworkAddress,
    NodeNetworkResource,
)
from yurt.structs.resources import parse_port_ranges

FAKE_DEVICE_PLUGIN = "yurt-fake-device"
_DEVICE_KEYS = {"count", "ids", "attributes"}
_HOST_NETWORK_KEYS = {"cidr", "interface", "reserved_ports"}


def _blocks(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            out.update(_blocks(item))
        return out
    return value if isinstance(value, dict) else {}


def parse_fake_devices(config: dict[str, Any] | None) -> list[NodeDeviceResource]:
    """The `device "vendor/type/model" {}` blocks of the plugin config; ValueError names the field."""
    from yurt.scheduler.devices import parse_attribute

    out: list[NodeDeviceResource] = []
    per_type: dict[str, int] = {}
    for key in _blocks(config):
        if key != "device":
            raise ValueError(f"unknown key {key!r} (expected device blocks)")
    for label, body in _blocks((config or {}).get("device")).items():
        where = f'device "{label}"'
        parts = label.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{where}: name must be vendor/type/model, got {label!r}")
        body = _blocks(body)
        for k in body:
            if k not in _DEVICE_KEYS:
                raise ValueError(f"{where}: unknown key {k!r} (valid: {', '.join(sorted(_DEVICE_KEYS))})")
        ids = body.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)):
            raise ValueError(f"{where}: ids must be a list of non-empty strings, got {ids!r}")
        count = body.get("count", len(ids) if ids else 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{where}: count must be a positive integer, got {count!r}")
        if ids is not None and len(ids) != count:
            raise ValueError(f"{where}: count = {count} but {len(ids)} ids given")
        vendor, typ, model = parts
        if ids is None:
            start = per_type.get(typ, 0)
            ids = [f"{typ}-{start + i}" for i in range(count)]
            per_type[typ] = start + count
        attrs = {str(k): parse_attribute(v) for k, v in _blocks(body.get("attributes")).items()}
        out.append(NodeDeviceResource(vendor=vendor, type=typ, name=model,
                                      instances=[NodeDevice(id=i, healthy=True) for i in ids],
                                      attributes=attrs or None))
    return out


def parse_host_networks(blocks: Any) -> dict[str, ClientHostNetworkConfig]:
    """`host_network "name" {}` blocks; ValueError names the network and field."""
    out: dict[str, ClientHostNetworkConfig] = {}
    for name, body in _blocks(blocks).items():
        body = _blocks(body)
        where = f'host_network "{name}"'
        for k in body:
            if k not in _HOST_NETWORK_KEYS:
                raise ValueError(f"{where}: unknown key {k!r} (valid: {', '.join(sorted(_HOST_NETWORK_KEYS))})")
        cidr, interface = str(body.get("cidr", "")), str(body.get("interface", ""))
        if not cidr and not interface:
            raise ValueError(f"{where}: one of cidr or interface is required")
        if cidr:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{where}: invalid cidr {cidr!r}") from None
        reserved = str(body.get("reserved_ports", ""))
        try:
            parse_port_ranges(reserved)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        out[name] = ClientHostNetworkConfig(name=name, cidr=cidr, interface=interface, reserved_ports=reserved)
    return out


def interface_addresses() -> dict[str, list[str]]:
    """interface -> its IP addresses (IPv4 first)."""
    import psutil

    out: dict[str, list[str]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        v4 = [a.address for a in addrs if a.family == socket.AF_INET]
        v6 = [a.address.split("%")[0] for a in addrs if a.family == socket.AF_INET6]
        out[name] = v4 + v6
    return out


def node_networks(default_ip: str, host_networks: dict[str, ClientHostNetworkConfig],
                  interfaces: dict[str, list[str]], reserved_ports: str = "") -> list[NodeNetworkResource]:
    """One NodeNetworkResource per interface that carries the default address or a host network."""
    by_iface: dict[str, list[NodeNetworkAddress]] = {}
    for iface, addrs in interfaces.items():
        if default_ip in addrs:
            by_iface.setdefault(iface, []).append(NodeNetworkAddress(
                family=_family(default_ip), alias="default", address=default_ip, reserved_ports=reserved_ports))
    for name, hn in sorted(host_networks.items()):
        net = ipaddress.ip_network(hn.cidr, strict=False) if hn.cidr else None
        for iface, addrs in sorted(interfaces.items()):
            if hn.interface and iface != hn.interface:
                continue
            for addr in addrs:
                if net is not None and (ipaddress.ip_address(addr).version != net.version
                                        or ipaddress.ip_address(addr) not in net):
                    continue
                by_iface.setdefault(iface, []).append(NodeNetworkAddress(
                    family=_family(addr), alias=name, address=addr,
                    reserved_ports=",".join(p for p in (reserved_ports, hn.reserved_ports) if p)))
    return [NodeNetworkResource(mode="host", device=iface, addresses=addrs) for iface, addrs in by_iface.items()]


def _family(addr: str) -> str:
    return "ipv6" if ":" in addr else "ipv4"


def with_devices_and_networks(node: Node, devices: list[NodeDeviceResource],
                              host_networks: dict[str, ClientHostNetworkConfig], reserved_ports: str = "",
                              interfaces: dict[str, list[str]] | None = None) -> Node:
    """The fingerprinted node plus fake devices, host networks and reserved ports. Ports a host
    network reserves are reserved node-wide (ports are unique per node in yurt's scheduler)."""
    res = node.node_resources
    ip = (node.attributes or {}).get("unique.network.ip-address", "127.0.0.1")
    if interfaces is None:
        interfaces = interface_addresses()
    nets = node_networks(ip, host_networks, interfaces, reserved_ports)
    if res is not None:
        res = evolve(res, devices=devices or None, node_networks=nets or None)
    reserved_all = ",".join(p for p in (reserved_ports, *(h.reserved_ports for h in host_networks.values())) if p)
    reserved = node.reserved_resources
    if reserved is not None and reserved_all:
        reserved = evolve(reserved, networks=evolve(reserved.networks, reserved_host_ports=reserved_all))
    return evolve(node, node_resources=res, reserved_resources=reserved, host_networks=host_networks or None)


def device_env(devices: list[dict] | None) -> dict[str, str]:
    """`YURT_DEVICE_<TYPE>` (every type) and `NVIDIA_VISIBLE_DEVICES` (nvidia GPUs) for a task's
    assigned devices (`AllocatedTaskResources.Devices`)."""
    env: dict[str, str] = {}
    for d in devices or ():
        ids = [str(i) for i in d.get("DeviceIDs") or ()]
        keys = ["YURT_DEVICE_" + re.sub(r"[^A-Za-z0-9_]", "_", d.get("Type", "")).upper()]
        if d.get("Vendor") == "nvidia" and d.get("Type") == "gpu":
            keys.append("NVIDIA_VISIBLE_DEVICES")
        for key in keys:
            env[key] = ",".join(filter(None, [env.get(key, ""), *ids]))
    return env
