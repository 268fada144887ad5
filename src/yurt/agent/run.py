"""Run an agent: build the server and/or client from the config, serve HTTP, stop on a signal."""

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine

from aiohttp import web

from .. import __version__
from .config import AgentConfig, AgentConfigError
from .wiring import build_client_agent, build_server, client_only_app

log = logging.getLogger("yurt.agent")

EVENT_LOOP_ENV = "YURT_EVENT_LOOP"  # "asyncio" keeps the stdlib loop (for A/B measuring)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, else asyncio's own. uvloop reads and writes sockets
    without releasing the GIL for each call, so the HTTP loop no longer queues behind the
    scheduler threads for every send (W1: `GET /v1/jobs` p50 2.6-5x lower, bench/RESULTS.md)."""
    if os.environ.get(EVENT_LOOP_ENV, "") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_in_loop(coro: Coroutine):
    """`asyncio.run(coro)` on the agent's event loop (`event_loop_factory`)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(coro)


def banner(cfg: AgentConfig) -> str:
    mode = "server" if cfg.server.enabled else ""
    lines = [
        "==> Loaded configuration from " + ", ".join(cfg.files) if cfg.files else "",
        "==> Starting yurt agent...",
        "==> yurt agent configuration:",
        "",
        f"       Advertise Addrs: HTTP: {cfg.http_address}",
        f"            Bind Addrs: HTTP: [{cfg.bind_addr}:{cfg.http_port}]",
        f"                Client: {str(cfg.client.enabled).lower()}",
        f"             Log Level: {cfg.log_level.upper()}",
        "               Node Id: (assigned by the client at start)" if cfg.client.enabled else "",
        f"                Region: {cfg.region} (DC: {cfg.datacenter})",
        f"                Server: {str(cfg.server.enabled).lower()}{' (' + mode + ')' if False else ''}",
        f"               Version: {__version__}",
        "",
        "==> yurt agent started! Log data will stream in below:",
        "",
    ]
    return "\n".join(line for line in lines if line is not None)


def listen_backlog() -> int:
    """The kernel's limit, as Go's listeners (Nomad's) use: at 128, thousands of clients
    connecting at once overflow the accept queue and wait out SYN retransmits (1 s, 3 s, ...)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return max(128, min(int(f.read()), 65535))
    except (OSError, ValueError):
        return 4096


async def run_agent(cfg: AgentConfig, install_signals: Callable[[asyncio.Event], None]) -> int:
    stop = asyncio.Event()
    install_signals(stop)
    server = build_server(cfg) if cfg.server.enabled else None
    client = build_client_agent(cfg, server) if cfg.client.enabled else None
    rpc = None
    if server is not None:
        from ..http import build_app
        from ..rpc import INFO_PATH
        from ..rpc.server import RPCServer, info_route
        from ..state.etcd import EtcdError

        app = build_app(server, client)
        rpc = RPCServer(server)
        app.router.add_get(INFO_PATH, info_route(rpc))
        try:
            await server.start()
        except EtcdError as exc:  # HA: the log's etcd cluster cannot be read at start
            raise AgentConfigError(f"server.etcd_endpoints: cannot open the state in etcd: {exc}") from None
        from ..state import relax_gc

        relax_gc()  # after the restore: the restored state is never rescanned by the cyclic GC
    else:
        app = client_only_app(cfg, client)
    from ..http.fastget import AppRunner  # web.AppRunner + the watchers' fast path

    runner = AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.bind_addr, cfg.http_port, reuse_address=True, backlog=listen_backlog())
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if server is not None:
            await server.stop()
        raise AgentConfigError(f"Failed to start HTTP server on {cfg.bind_addr}:{cfg.http_port}: {exc.strerror}") from None
    if rpc is not None:
        await _start_rpc(rpc, cfg)
    if client is not None:
        await client.start()
    print(banner(cfg), flush=True)
    if client is not None:
        log.info("client started: node_id=%s name=%s", client.node.id, client.node.name)
    await stop.wait()
    print("==> Caught signal: interrupt\n    Gracefully shutting down agent...", flush=True)
    if client is not None:
        await client.stop()
        if cfg.dev_mode:
            await _destroy_dev_allocs(client)
    if rpc is not None:
        await rpc.stop()
    await runner.cleanup()
    if server is not None:
        await server.stop()
    return 0


async def _start_rpc(rpc, cfg: AgentConfig) -> None:
    """The server's RPC listener for clients on `ports.rpc`. Unlike Nomad's, an agent whose rpc
    port is taken still starts (several test agents on one host share the default 4647): its
    clients find no listener (`GET /v1/internal/rpc` answers 404) and use HTTP."""
    try:
        await rpc.start(cfg.bind_addr, cfg.rpc_port, backlog=listen_backlog())
    except OSError as exc:
        log.warning("ports.rpc = %d: cannot listen on %s:%d (%s); clients will use HTTP",
                    cfg.rpc_port, cfg.bind_addr, cfg.rpc_port, exc.strerror or exc)


async def _destroy_dev_allocs(client) -> None:
    """Nomad's dev mode destroys its allocations on shutdown; a client restart otherwise keeps them."""
    destroy = getattr(client, "destroy_all_allocs", None)
    if destroy is not None:
        await destroy()
