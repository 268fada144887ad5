"""HA: a follower forwards writes (any /v1 request but GET/HEAD, except node-local /v1/client/ and
agent-local /v1/agent/ routes) to the leader's HTTP address, then waits (briefly) until it has
applied the index the leader answered with, so a read through the same server sees the write.
Without a reachable leader the request is held until one is elected (at most a lease TTL + 2 s,
5 s at least), then fails with 500 "No cluster leader"."""

import asyncio

import aiohttp
from aiohttp import web

from yurt.server.endpoints import EndpointError


FORWARDED_HEADER = "X-Yurt-Forwarded"
_READS = ("GET", "HEAD", "OPTIONS")
_LOCAL_PREFIXES = ("/v1/client/", "/v1/agent/")
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
CATCH_UP_WAIT = 5.0
HOLD_TIMEOUT = 5.0  # Nomad's rpc_hold_timeout
_SESSION = web.AppKey("leader_forward_session", dict)


def must_forward(request: web.Request, server) -> bool:
    return (
        getattr(server, "leadership", None) is not None
        and not server.leader
        and request.method not in _READS
        and request.path.startswith("/v1/")
        and not request.path.startswith(_LOCAL_PREFIXES)
        and FORWARDED_HEADER not in request.headers  # forwarded once: a stale view answers itself
    )


async def forward_to_leader(request: web.Request, handler, server):
    """Relay a write that `must_forward` to the leader (or to `handler` if this server was
    elected meanwhile). Called by the app's one middleware (`yurt.http.app.nomad_errors`): a
    middleware of its own cost every request a layer of aiohttp's middleware chain."""
    holder = request.app[_SESSION]
    session = holder.get("session")
    if session is None or session.closed:
        session = holder["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    headers[FORWARDED_HEADER] = server.config.node_name
    body = await request.read()
    loop = asyncio.get_running_loop()
    # as Nomad holds RPCs while there is no leader: wait for one (a lease's time) before failing
    deadline = loop.time() + max(HOLD_TIMEOUT, server.leadership.ttl + 2)
    unreachable, error = "", "No cluster leader"
    while True:
        if server.leader:  # elected meanwhile
            return await handler(request)
        leader = server.leadership.leader_http
        if leader and leader != unreachable:
            try:
                out, index = await _relay(session, request, leader + request.rel_url.path_qs, headers, body)
                break
            except aiohttp.ClientConnectorError as exc:  # nothing was sent: safe to try the next leader
                unreachable, error = leader, f"No cluster leader: forwarding to {leader} failed: {exc}"
        if loop.time() >= deadline:
            raise EndpointError(500, error)
        await asyncio.sleep(0.1)
    if index.isdigit() and server.state is not None:
        await _wait_for_index(server, int(index))
    return out


async def _relay(session, request: web.Request, url: str, headers: dict, body: bytes) -> tuple[web.Response, str]:
    try:
        async with session.request(request.method, url, data=body or None, headers=headers) as upstream:
            payload = await upstream.read()
            out = web.Response(status=upstream.status, body=payload)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_HEADERS and key.lower() != "content-encoding":
                    out.headers[key] = value
            return out, upstream.headers.get("X-Nomad-Index", "")
    except aiohttp.ClientConnectorError:
        raise
    except aiohttp.ClientConnectionError as exc:  # the leader may have applied it: not retried
        raise EndpointError(500, f"forwarding to the leader {url} failed: {exc}") from None


async def _wait_for_index(server, index: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CATCH_UP_WAIT
    while server.state is not None and server.state.latest_index < index:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await server.state.wait_for_change((), server.state.latest_index, remaining)


def install(app: web.Application) -> None:
    """The forwarding session's holder and its cleanup."""
    app[_SESSION] = {}
    app.on_cleanup.append(_close_session)


async def _close_session(app: web.Application) -> None:
    session = app[_SESSION].get("session")
    if session is not None:
        await session.close()
