"""A simulated fleet: N client nodes in this process talking to a server process over its
RPC listener (`yurt.rpc`), as real client agents do.

Two kinds of node:
- `sim` (default): `bench.simnode.SimNode`, a light node speaking the client routes
  (register, heartbeat, blocking alloc watch, batched status updates), like Nomad's nodesim.
- `real`: the real `yurt.client.ClientAgent` with the mock driver, each with its own node
  name and data dir under the fleet's temp dir. Host fingerprinting runs once per fleet and
  is reused by every agent (passed as the agent's `node_builder`).

Both advertise SIM_NODE_CPU / SIM_NODE_MEMORY_MB so that the same jobs fit either way.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import time
from typing import Any

from yurt.structs import evolve
from yurt.structs.codec import to_wire
from yurt.structs.node import NodeCpuResources, NodeDiskResources, NodeMemoryResources

from .simnode import SIM_NODE_CPU, SIM_NODE_DISK_MB, SIM_NODE_MEMORY_MB, FleetCounters, SimNode

FLEET_MODES = ("sim", "real")


def sim_resources(node):
    res = node.node_resources
    return evolve(res, cpu=NodeCpuResources(cpu_shares=SIM_NODE_CPU, total_cpu_cores=8, reservable_cpu_cores=list(range(8))),
                  memory=NodeMemoryResources(memory_mb=SIM_NODE_MEMORY_MB),
                  disk=NodeDiskResources(disk_mb=SIM_NODE_DISK_MB), networks=None)


@functools.lru_cache(maxsize=1)
def _host_attributes() -> tuple[dict[str, str], dict[str, Any]]:
    """Fingerprint this host once (the expensive part of building a node)."""
    from yurt.client.config import ClientConfig
    from yurt.client.fingerprint import collect_attributes
    from yurt.drivers import builtin_drivers

    cfg = ClientConfig(data_dir=tempfile.gettempdir(), node_name="fingerprint")
    return collect_attributes(cfg, builtin_drivers(False, True))


def cached_build_node(config, drivers):
    """`yurt.client.fingerprint.build_node` with the host fingerprint reused and the node's
    resources set to a simulated node's."""
    from yurt.client import fingerprint

    attrs, infos = _host_attributes()
    original = fingerprint.collect_attributes
    fingerprint.collect_attributes = lambda c, d: (dict(attrs, **{"unique.hostname": c.node_name}), dict(infos))
    try:
        node = fingerprint.build_node(config, drivers)
    finally:
        fingerprint.collect_attributes = original
    return evolve(node, node_resources=sim_resources(node))


def sim_node_template() -> dict[str, Any]:
    """The Node JSON every SimNode registers (ID, SecretID and Name are set per node)."""
    from yurt.client.config import ClientConfig
    from yurt.drivers import builtin_drivers

    cfg = ClientConfig(data_dir=tempfile.gettempdir(), node_name="sim")
    return to_wire(cached_build_node(cfg, builtin_drivers(False, True)))


class Fleet:
    def __init__(self, base: str, count: int, mode: str = "sim", prefix: str = "sim", legacy_watch: bool = False):
        if mode not in FLEET_MODES:
            raise ValueError(f"fleet mode {mode!r}: choose one of {FLEET_MODES}")
        self.base, self.count, self.mode, self.prefix = base, count, mode, prefix
        self.legacy_watch = legacy_watch  # sim nodes: watch full allocs instead of pulling changes
        self.counters = FleetCounters()
        self.nodes: list[Any] = []
        self.workdir: str | None = None
        self.changed = asyncio.Event()

    async def start(self) -> None:
        """Create every node and start them all at once (they register concurrently)."""
        if self.mode == "sim":
            from .simrpc import listener_of

            template = sim_node_template()
            host, _, port = self.base.split("://", 1)[-1].rstrip("/").rpartition(":")
            rpc = await listener_of(host, int(port))  # asked once for the fleet, not per node
            self.nodes = [SimNode(self.base, template, f"{self.prefix}-{i}", self.counters,
                                  self.changed.set, self.legacy_watch, rpc) for i in range(self.count)]
            for node in self.nodes:
                node.start()
        else:
            await self._start_real()

    async def _start_real(self) -> None:
        from yurt.client import ClientAgent
        from yurt.client.config import ClientConfig
        from yurt.rpc.client import rpc_api_wrapper

        self.workdir = tempfile.mkdtemp(prefix="yurt-fleet-")
        server = self.base.split("://", 1)[-1]
        for i in range(self.count):
            cfg = ClientConfig(data_dir=f"{self.workdir}/{self.prefix}-{i}", node_name=f"{self.prefix}-{i}",
                               servers=[server], raw_exec_enabled=False, mock_driver_enabled=True)
            self.nodes.append(ClientAgent(cfg, node_builder=cached_build_node, wrap_api=rpc_api_wrapper))
        await asyncio.gather(*(agent.start() for agent in self.nodes))

    def registered(self) -> int:
        if self.mode == "sim":
            return sum(1 for n in self.nodes if n.registered.is_set())
        return sum(1 for a in self.nodes if a.registered.is_set())

    def running(self) -> int:
        """Allocations this fleet reported running (sim: acknowledged by the server)."""
        if self.mode == "sim":
            return self.counters.running_acked
        return sum(1 for a in self.nodes for r in a.alloc_runners.values() if r.client_status == "running")

    async def wait(self, predicate, timeout: float, interval: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(interval)
        return predicate()

    async def stop_nodes(self, nodes: list[Any]) -> None:
        """Stop these nodes entirely (no heartbeats, no updates): a node loss."""
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes), return_exceptions=True)
        if self.mode == "real":
            from yurt.drivers import mock

            mock._TASKS.clear()  # in-process mock tasks of this fleet
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
