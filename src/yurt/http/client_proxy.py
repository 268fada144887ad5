"""`/v1/client/*`: served by the local client agent, else forwarded (streaming) to the
node that owns the allocation (or the `node_id` of the query)."""

import asyncio
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
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await relay_websocket(request, session, url)
        return await relay_request(request, session, url)
    except aiohttp.WSServerHandshakeError as exc:
        raise EndpointError(exc.status or 500, f"node {node.id}: {exc.message}") from None
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


_WS_END = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
_TOKEN_HEADERS = ("x-nomad-token", "authorization")


async def relay_websocket(request: web.Request, session: aiohttp.ClientSession, url: str) -> web.WebSocketResponse:
    """Relay a websocket (`alloc exec`) to `url`: frames both ways, and the side that closes first
    closes the other with its code and reason."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in _TOKEN_HEADERS}
    async with session.ws_connect(url, headers=headers, autoclose=False) as upstream:
        downstream = web.WebSocketResponse(autoclose=False)
        await downstream.prepare(request)
        to_node = asyncio.create_task(_pipe_frames(downstream, upstream))
        to_user = asyncio.create_task(_pipe_frames(upstream, downstream))
        done, pending = await asyncio.wait({to_node, to_user}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        code, reason = next(iter(done)).result()
        for ws in (upstream, downstream):
            if not ws.closed:
                await ws.close(code=code, message=reason)
        return downstream


async def _pipe_frames(source, sink) -> tuple[int, bytes]:
    """Copy frames until `source` closes; (close code, reason) for the other side."""
    while True:
        msg = await source.receive()
        if msg.type in _WS_END:
            code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.data, int) else 1000
            reason = (msg.extra or "").encode() if isinstance(msg.extra, str) else b""
            return code, reason
        if msg.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(msg.data)


def install_session_holder(app: web.Application) -> None:
    app[SESSION_KEY] = {}
    app.on_cleanup.append(close_session)


async def close_session(app: web.Application) -> None:
    session = app[SESSION_KEY].get("session")
    if session is not None:
        await session.close()
