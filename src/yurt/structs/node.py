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


class NodeResources(NomadStruct):
    cpu: NodeCpuResources = msgspec.field(default_factory=NodeCpuResources, name="Cpu")
    memory: NodeMemoryResources = msgspec.field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = msgspec.field(default_factory=NodeDiskResources)
    networks: list[NetworkResource] | None = None
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
