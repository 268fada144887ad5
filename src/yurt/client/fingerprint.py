"""Fingerprinters: what this host is and has, as Nomad's node attributes.

Each `fingerprint_*` function returns a dict of attributes; `build_node` runs them all
and assembles the `Node` with its resources and drivers.
"""

import datetime
import os
import platform
import signal
import socket

import psutil

import yurt
from yurt.drivers.base import Driver
from yurt.structs.job import NetworkResource
from yurt.structs.node import (
    DriverInfo,
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedNetworkResources,
    NodeReservedResources,
    NodeResources,
    NODE_STATUS_INIT,
)

from .config import ClientConfig
from .devices import with_devices_and_networks
from .volumes import node_host_volumes

NOMAD_COMPAT_VERSION = getattr(yurt, "__version__", "0.1.0")


def fingerprint_kernel() -> dict[str, str]:
    uname = platform.uname()
    return {"kernel.name": uname.system.lower(), "kernel.arch": uname.machine, "kernel.version": uname.release.split("-")[0]}


def _os_release() -> dict[str, str]:
    try:
        with open("/etc/os-release") as f:
            pairs = (line.rstrip("\n").split("=", 1) for line in f if "=" in line)
            return {k: v.strip('"') for k, v in pairs}
    except OSError:
        return {}


def fingerprint_os() -> dict[str, str]:
    release = _os_release()
    names = sorted(s.name for s in signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_"))
    return {
        "os.name": release.get("ID", platform.system().lower()),
        "os.version": release.get("VERSION_ID", platform.release()),
        "os.signals": ",".join(names),
    }


def fingerprint_cgroups() -> dict[str, str]:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return {"os.cgroups.version": "2"}
    if os.path.isdir("/sys/fs/cgroup/cpu"):
        return {"os.cgroups.version": "1"}
    return {}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_mhz() -> int:
    try:
        freq = psutil.cpu_freq()
        if freq and (freq.max or freq.current):
            return int(freq.max or freq.current)
    except (OSError, NotImplementedError, AttributeError):
        pass
    return 1000  # unknown: assume 1 GHz per core


def fingerprint_cpu(reserved_cpu: int = 0, total_compute: int = 0) -> dict[str, str]:
    """`total_compute` (client `cpu_total_compute`, MHz) overrides the detected total, as Nomad."""
    cores = psutil.cpu_count(logical=True) or 1
    mhz = _cpu_mhz()
    total = total_compute if total_compute > 0 else mhz * cores
    return {
        "cpu.arch": platform.machine(),
        "cpu.modelname": _cpu_model(),
        "cpu.numcores": str(cores),
        "cpu.frequency": str(mhz),
        "cpu.totalcompute": str(total),
        "cpu.usablecompute": str(total - reserved_cpu),
        "cpu.reservablecores": f"0-{cores - 1}" if cores > 1 else "0",
    }


def fingerprint_memory(total_mb: int = 0) -> dict[str, str]:
    """`total_mb` (client `memory_total_mb`) overrides the detected memory, as Nomad."""
    total = total_mb * 1024 * 1024 if total_mb > 0 else psutil.virtual_memory().total
    return {"memory.totalbytes": str(total)}


def fingerprint_host() -> dict[str, str]:
    return {"unique.hostname": socket.gethostname()}


def fingerprint_network(advertise: str = "") -> dict[str, str]:
    host = advertise.rsplit(":", 1)[0] if advertise else ""
    if not host or host in ("0.0.0.0", "localhost"):
        host = _default_ip()
    return {"unique.network.ip-address": host}


def _interface_of(ip: str) -> str:
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address == ip for a in addrs):
            return name
    return "lo" if ip.startswith("127.") else ""


def _default_ip() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def fingerprint_storage(data_dir: str) -> dict[str, str]:
    usage = psutil.disk_usage(data_dir)
    volume = "/"
    for part in psutil.disk_partitions(all=True):
        if data_dir.startswith(part.mountpoint) and len(part.mountpoint) >= len(volume):
            volume = part.device or part.mountpoint
    return {
        "unique.storage.volume": volume,
        "unique.storage.bytestotal": str(usage.total),
        "unique.storage.bytesfree": str(usage.free),
    }


def fingerprint_nomad(advertise: str) -> dict[str, str]:
    attrs = {"nomad.version": NOMAD_COMPAT_VERSION, "nomad.revision": "yurt", "nomad.service_discovery": "true"}
    if advertise:
        attrs["nomad.advertise.address"] = advertise
    return attrs


def fingerprint_drivers(drivers: dict[str, Driver]) -> tuple[dict[str, str], dict[str, DriverInfo]]:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    attrs: dict[str, str] = {}
    infos: dict[str, DriverInfo] = {}
    for name, driver in drivers.items():
        fp = driver.fingerprint()
        if fp.detected:
            attrs.update(fp.attributes)
        infos[name] = DriverInfo(
            attributes=dict(fp.attributes) or None,
            detected=fp.detected,
            healthy=fp.healthy,
            health_description=fp.health_description,
            update_time=now,
        )
    return attrs, infos


def collect_attributes(config: ClientConfig, drivers: dict[str, Driver]) -> tuple[dict[str, str], dict[str, DriverInfo]]:
    os.makedirs(config.data_dir, exist_ok=True)
    attrs: dict[str, str] = {}
    for part in (
        fingerprint_kernel(),
        fingerprint_os(),
        fingerprint_cgroups(),
        fingerprint_cpu(config.reserved_cpu, config.cpu_total_compute),
        fingerprint_memory(config.memory_total_mb),
        fingerprint_host(),
        fingerprint_network(config.http_advertise),
        fingerprint_storage(config.data_dir),
        fingerprint_nomad(config.http_advertise),
    ):
        attrs.update(part)
    driver_attrs, infos = fingerprint_drivers(drivers)
    attrs.update(driver_attrs)
    return attrs, infos


def build_node(config: ClientConfig, drivers: dict[str, Driver]) -> Node:
    """The Node this client registers: identity, attributes, resources, drivers."""
    attrs, infos = collect_attributes(config, drivers)
    node = Node(
        id=config.node_id,
        secret_id=config.secret_id,
        datacenter=config.datacenter,
        name=config.node_name,
        http_addr=config.http_advertise,
        attributes=attrs,
        node_resources=node_resources(attrs),
        reserved_resources=NodeReservedResources(
            cpu=NodeReservedCpuResources(cpu_shares=config.reserved_cpu),
            memory=NodeMemoryResources(memory_mb=config.reserved_memory),
            disk=NodeDiskResources(disk_mb=config.reserved_disk),
            networks=NodeReservedNetworkResources(reserved_host_ports=config.reserved_ports),
        ),
        meta=dict(config.meta),
        node_class=config.node_class,
        node_pool=config.node_pool,
        status=NODE_STATUS_INIT,
        drivers=infos,
        links={},
        host_volumes=node_host_volumes(config.host_volumes),
    )
    return with_devices_and_networks(node, config.devices, config.host_networks, config.reserved_ports)


def node_resources(attrs: dict[str, str]) -> NodeResources:
    cores = int(attrs.get("cpu.numcores", "1"))
    ip = attrs.get("unique.network.ip-address", "127.0.0.1")
    return NodeResources(
        networks=[NetworkResource(mode="host", device=_interface_of(ip), ip=ip, cidr=f"{ip}/32")],
        cpu=NodeCpuResources(
            cpu_shares=int(attrs.get("cpu.totalcompute", "0")),
            total_cpu_cores=cores,
            reservable_cpu_cores=list(range(cores)),
        ),
        memory=NodeMemoryResources(memory_mb=int(attrs.get("memory.totalbytes", "0")) // (1024 * 1024)),
        disk=NodeDiskResources(disk_mb=int(attrs.get("unique.storage.bytesfree", "0")) // (1024 * 1024)),
    )
