"""`/v1/client/*`: served by the local client agent, else forwarded (streaming) to the
node that owns the allocation (or the `node_id` of the query)."""

import re

import aiohttp
from aiohttp import web

from yurt.server.endpoints import EndpointError

from .context import server_of
from .query import lookup_by_id

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
_ALLOC_IN_PATH = re.compile(r"^/v1/client/(?:fs/[a-z]+|allocation)/([^/]+)")
SESSION_KEY: web.AppKey = web.AppKey("yurt_client_proxy_session", dict)


def owning_node_id(request: web.Request) -> str:
    server = server_of(request)
    snap = server.state.snapshot()
    match = _ALLOC_IN_PATH.match(request.path)
    if match:
        alloc_id = match.group(1)
        alloc = lookup_by_id(snap, "allocs", alloc_id)
        if alloc is None:
            raise EndpointError(404, "Unknown allocation")
        return alloc.node_id
    node_id = request.query.get("node_id") or request.query.get("nodeID") or ""
    if not node_id:
        raise EndpointError(400, "No local Node and node_id not provided")
    return node_id


async def proxy_client_request(request: web.Request) -> web.StreamResponse:
    server = server_of(request)
    node = server.state.snapshot().node_by_id(owning_node_id(request))
    if node is None:
        raise EndpointError(404, "Unknown node")
    if not node.http_addr:
        raise EndpointError(500, f"node {node.id} has no HTTP address")
    scheme = "https" if node.tls_enabled else "http"
    url = f"{scheme}://{node.http_addr}{request.rel_url.path_qs}"
    holder = request.app[SESSION_KEY]
    session = holder.get("session")
    if session is None or session.closed:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        holder["session"] = session
    try:
        return await relay_request(request, session, url)
    except aiohttp.ClientConnectionError as exc:
        raise EndpointError(500, f"failed to reach node {node.id} at {node.http_addr}: {exc}") from None


async def relay_request(request: web.Request, session: aiohttp.ClientSession, url: str) -> web.StreamResponse:
    """Send `request` to `url` and stream the answer back (status, headers, body as it arrives).
    Connection failures are raised as aiohttp.ClientConnectionError for the caller to word."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    body = await request.read()
    async with session.request(request.method, url, data=body or None, headers=headers) as upstream:
        resp = web.StreamResponse(status=upstream.status)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_HEADERS:
                resp.headers[key] = value
        await resp.prepare(request)
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def install_session_holder(app: web.Application) -> None:
    app[SESSION_KEY] = {}
    app.on_cleanup.append(close_session)


async def close_session(app: web.Application) -> None:
    session = app[SESSION_KEY].get("session")
    if session is not None:
        await session.close()
