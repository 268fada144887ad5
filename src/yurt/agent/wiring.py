"""Turn an AgentConfig into the server and client objects, and the client-only HTTP app."""

import os

from aiohttp import web

from ..structs import SECOND
from .config import AgentConfig, AgentConfigError


def build_server(cfg: AgentConfig):
    from ..server import Server, ServerConfig

    sc = ServerConfig(
        data_dir=cfg.data_dir,
        region=cfg.region,
        datacenter=cfg.datacenter,
        node_name=cfg.node_name,
        advertise_addr=cfg.http_address.rsplit(":", 1)[0],
        http_port=cfg.http_port,
        rpc_port=cfg.rpc_port,
        serf_port=cfg.serf_port,
    )
    if cfg.server.num_schedulers:
        sc.num_schedulers = cfg.server.num_schedulers
    for key in ("heartbeat_grace", "min_heartbeat_ttl"):  # agent config: ns; ServerConfig: seconds
        value = getattr(cfg.server, key)
        if value:
            setattr(sc, key, value / SECOND)
    if cfg.server.state_backend == "etcd":
        sc.state_backend, sc.etcd_endpoints, sc.etcd_prefix = "etcd", cfg.server.etcd_endpoints, cfg.server.etcd_prefix
        sc.etcd_lease_ttl = cfg.server.etcd_lease_ttl / SECOND or sc.etcd_lease_ttl
    if cfg.server.max_heartbeats_per_second:
        sc.max_heartbeats_per_second = cfg.server.max_heartbeats_per_second
    return Server(sc)


def build_client_agent(cfg: AgentConfig, server=None):
    """The client agent; with `server` (this agent's own) it reaches that server in process."""
    from ..client import ClientAgent
    from ..client.config import ClientConfig
    from ..client.devices import FAKE_DEVICE_PLUGIN, parse_fake_devices

    servers = cfg.client.servers or ([cfg.http_address] if cfg.server.enabled else [])
    cc = ClientConfig(
        data_dir=cfg.data_dir,
        node_name=cfg.node_name,
        datacenter=cfg.datacenter,
        region=cfg.region,
        node_class=cfg.client.node_class,
        node_pool=cfg.client.node_pool,
        meta=dict(cfg.client.meta),
        options=dict(cfg.client.options),
        servers=servers,
        http_advertise=cfg.http_address,
        raw_exec_enabled=cfg.plugin_enabled("raw_exec")
        or cfg.client.options.get("driver.raw_exec.enable") in ("1", "true"),
        # Nomad builds mock_driver only into test binaries; here a plugin block turns it on.
        mock_driver_enabled=cfg.plugin_enabled("mock_driver"),
        host_volumes=dict(cfg.client.host_volumes),
        devices=parse_fake_devices((cfg.plugins.get(FAKE_DEVICE_PLUGIN) or {}).get("config")),
        host_networks=dict(cfg.client.host_networks),
        reserved_ports=cfg.client.reserved.reserved_ports,
    )
    reserved = cfg.client.reserved
    for src, dst in (("cpu", "reserved_cpu"), ("memory", "reserved_memory"), ("disk", "reserved_disk")):
        if getattr(reserved, src) and hasattr(cc, dst):
            setattr(cc, dst, getattr(reserved, src))
    for key in ("cpu_total_compute", "memory_total_mb", "gc_disk_usage_threshold", "gc_inode_usage_threshold",
                "gc_max_allocs", "gc_parallel_destroys"):
        setattr(cc, key, getattr(cfg.client, key))
    if cfg.client.gc_interval:
        cc.gc_interval = cfg.client.gc_interval / SECOND
    if cfg.client.max_kill_timeout:
        cc.max_kill_timeout = cfg.client.max_kill_timeout
    os.makedirs(cfg.data_dir, exist_ok=True)
    from ..rpc.client import rpc_api_wrapper

    wrap_api = rpc_api_wrapper  # a remote server: the internal routes over its RPC listener
    if server is not None:
        from .local_server import local_api_wrapper

        local = local_api_wrapper(server, cfg.http_address)

        def wrap_api(api):  # this agent's own server in process, any other over RPC
            wrapped = local(api)
            return wrapped if wrapped is not api else rpc_api_wrapper(api)
    return ClientAgent(cc, drivers=build_drivers(cfg, cc), wrap_api=wrap_api)


def build_drivers(cfg: AgentConfig, cc) -> dict:
    """The client's drivers with their `plugin "<name>" { config { ... } }`; docker's dangling
    container reconciler starts here (it needs the running loop: call from a coroutine's thread)."""
    from ..drivers import builtin_drivers

    plugin_configs = {name: dict(block.get("config") or {}) for name, block in cfg.plugins.items()}
    try:
        drivers = builtin_drivers(
            cc.raw_exec_enabled, cc.mock_driver_enabled, plugin_configs=plugin_configs, alloc_root=cc.alloc_dir
        )
    except ValueError as exc:  # the config files were checked when loaded; flags or code may still differ
        raise AgentConfigError(str(exc)) from None
    docker = drivers.get("docker")
    if docker is not None and cc.driver_allowed("docker"):
        docker.start_dangling_reconciler()
    return drivers


def client_only_app(cfg: AgentConfig, client) -> web.Application:
    """A client-only agent serves its own client routes and forwards the rest of /v1 to a server,
    so NOMAD_ADDR may point at any agent, as with Nomad."""
    from ..client.http import client_routes
    from .forward import forward_to_servers

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(client_routes(client))
    app.router.add_route("*", "/{tail:.*}", forward_to_servers(cfg.client.servers))
    return app
