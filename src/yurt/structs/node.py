"""Client nodes: identity, fingerprinted attributes, capacity and status."""

from typing import Any

import msgspec

from .base import NomadStruct
from .job import NetworkResource

NODE_STATUS_INIT = "initializing"
NODE_STATUS_READY = "ready"
NODE_STATUS_DOWN = "down"
NODE_STATUS_DISCONNECTED = "disconnected"

NODE_ELIGIBLE = "eligible"
NODE_INELIGIBLE = "ineligible"


class NodeCpuResources(NomadStruct):
    cpu_shares: int = msgspec.field(default=0, name="CpuShares")
    total_cpu_cores: int = msgspec.field(default=0, name="TotalCpuCores")
    reservable_cpu_cores: list[int] | None = msgspec.field(default=None, name="ReservableCpuCores")


class NodeMemoryResources(NomadStruct):
    memory_mb: int = 0


class NodeDiskResources(NomadStruct):
    disk_mb: int = 0


class NodeDeviceLocality(NomadStruct):
    pci_bus_id: str = msgspec.field(default="", name="PciBusID")


class NodeDevice(NomadStruct):
    """One instance of a device (one GPU)."""

    id: str = ""
    healthy: bool = True
    health_description: str = ""
    locality: NodeDeviceLocality | None = None


class Attribute(NomadStruct):
    """A device attribute: one of the values, with an optional unit ("MiB", "MHz", "W")."""

    float_val: float | None = None
    int_val: int | None = None
    string_val: str | None = None
    bool_val: bool | None = None
    unit: str = ""


class NodeDeviceResource(NomadStruct):
    """A group of identical device instances: vendor/type/name, e.g. nvidia/gpu/Tesla T4."""

    vendor: str = ""
    type: str = ""
    name: str = ""
    instances: list[NodeDevice] | None = None
    attributes: dict[str, Attribute] | None = None

    @property
    def id_text(self) -> str:
        return f"{self.vendor}/{self.type}/{self.name}"


class NodeNetworkAddress(NomadStruct):
    family: str = "ipv4"
    alias: str = ""  # the host network's name ("default" for the node's main address)
    address: str = ""
    reserved_ports: str = ""
    gateway: str = ""


class NodeNetworkResource(NomadStruct):
    mode: str = "host"
    device: str = ""
    mac_address: str = ""
    speed: int = 0
    addresses: list[NodeNetworkAddress] | None = None


class ClientHostNetworkConfig(NomadStruct):
    """A client's `host_network "name" { cidr, interface, reserved_ports }`."""

    name: str = ""
    cidr: str = msgspec.field(default="", name="CIDR")
    interface: str = ""
    reserved_ports: str = ""


class NodeResources(NomadStruct):
    cpu: NodeCpuResources = msgspec.field(default_factory=NodeCpuResources, name="Cpu")
    memory: NodeMemoryResources = msgspec.field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = msgspec.field(default_factory=NodeDiskResources)
    networks: list[NetworkResource] | None = None
    node_networks: list[NodeNetworkResource] | None = None
    devices: list[NodeDeviceResource] | None = None
    min_dynamic_port: int = 20000
    max_dynamic_port: int = 32000


class NodeReservedCpuResources(NomadStruct):
    cpu_shares: int = msgspec.field(default=0, name="CpuShares")


class NodeReservedNetworkResources(NomadStruct):
    reserved_host_ports: str = ""


class NodeReservedResources(NomadStruct):
    cpu: NodeReservedCpuResources = msgspec.field(default_factory=NodeReservedCpuResources, name="Cpu")
    memory: NodeMemoryResources = msgspec.field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = msgspec.field(default_factory=NodeDiskResources)
    networks: NodeReservedNetworkResources = msgspec.field(default_factory=NodeReservedNetworkResources)


class DriverInfo(NomadStruct):
    attributes: dict[str, str] | None = None
    detected: bool = False
    healthy: bool = False
    health_description: str = ""
    update_time: str = ""


class NodeEvent(NomadStruct):
    message: str = ""
    subsystem: str = ""
    details: dict[str, str] | None = None
    timestamp: str = ""
    create_index: int = 0


class DrainStrategy(NomadStruct):
    deadline: int = 0
    ignore_system_jobs: bool = False
    force_deadline: str = ""
    started_at: str = ""


class Node(NomadStruct):
    id: str = ""
    secret_id: str = ""
    datacenter: str = "dc1"
    name: str = ""
    http_addr: str = ""
    tls_enabled: bool = False
    attributes: dict[str, str] | None = None
    node_resources: NodeResources | None = None
    reserved_resources: NodeReservedResources | None = None
    links: dict[str, str] | None = None
    meta: dict[str, str] | None = None
    node_class: str = ""
    node_pool: str = "default"
    computed_class: str = ""
    drain_strategy: DrainStrategy | None = None
    scheduling_eligibility: str = NODE_ELIGIBLE
    status: str = NODE_STATUS_INIT
    status_description: str = ""
    status_updated_at: int = 0
    events: list[NodeEvent] | None = None
    drivers: dict[str, DriverInfo] | None = None
    host_volumes: dict[str, Any] | None = None
    host_networks: dict[str, ClientHostNetworkConfig] | None = None
    last_drain: dict[str, Any] | None = None
    create_index: int = 0
    modify_index: int = 0

    @property
    def ready(self) -> bool:
        return (
            self.status == NODE_STATUS_READY
            and self.scheduling_eligibility == NODE_ELIGIBLE
            and self.drain_strategy is None
        )
