"""The server's RPC listener (the agent's rpc port): the client-internal routes of
`yurt.agent.local_server.LocalServerAPI`, the same handlers the dev agent's in-process link
calls, over `yurt.rpc` frames. A lean asyncio Protocol: no per-request HTTP parsing,
routing table, middleware or response objects, which were a quarter of the server's CPU
while thousands of clients registered, heartbeated, watched and reported over HTTP."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgspec

from yurt.agent.local_server import LocalServerAPI
from yurt.http.alloc_encoding import encode_allocs_with_jobs

from . import INFO_PATH, USE_HTTP, FrameBuffer, FrameError, Request, decode_request, frame

log = logging.getLogger(__name__)
_encoder = msgspec.msgpack.Encoder()


class RPCServer:
    """Serves `server`'s client-internal routes on one TCP port."""

    def __init__(self, server):
        self.server = server
        self.api = _Handlers(server, None)
        self.id = uuid.uuid4().hex  # this listener: a client checks it reached the server it asked
        self.port = 0
        self._listener: asyncio.AbstractServer | None = None
        self.connections: set[_Connection] = set()

    async def start(self, host: str, port: int, backlog: int = 4096) -> None:
        """Listen on `host:port` (0: a free port); OSError when it cannot."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(lambda: _Connection(self), host, port,
                                                  reuse_address=True, backlog=backlog)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            for conn in list(self.connections):
                conn.close()
            await self._listener.wait_closed()
            self._listener = None

    def info(self) -> dict[str, Any]:
        return {"Port": self.port, "ID": self.id}

    async def handle(self, req: Request) -> tuple[int, int, Any]:
        """(status, index, body or error text), as the HTTP API would answer the request."""
        server, method, path = self.server, req.method, req.path
        if path == INFO_PATH and method == "GET":
            return 200, 0, self.info()
        params = req.params or {}
        region = params.get("region")
        if region and region != server.config.region:
            return 500, 0, "No path to region"
        found = self.api._handler(method, path)
        if found is None:
            return 404, 0, "404 page not found"
        if server.state is None:
            return 500, 0, "No cluster leader"
        handler, is_write, arg = found
        if not self.api._local(is_write):
            return USE_HTTP, 0, "send this request over HTTP"  # an HA follower: HTTP forwards writes
        try:
            body, meta = await handler(arg, params, req.body)
        except Exception as exc:  # as `LocalServerAPI.call` maps it, without its coroutine
            error = self.api.api_error(exc, method, path)
            return error.status, 0, error.text
        return 200, meta.last_index, body


class _Handlers(LocalServerAPI):
    """The in-process link's handlers, with allocations (the watch's delta and `allocs/get`)
    answered already encoded, each job version encoded once (`yurt.http.alloc_encoding`'s
    cache, msgpack) instead of converted to builtins per alloc: 3 us instead of 23 us an alloc."""

    def _with_jobs(self, snap, allocs: list) -> msgspec.Raw:
        return msgspec.Raw(encode_allocs_with_jobs(snap, allocs, _encoder))


class _Connection(asyncio.Protocol):
    """One client's connection: each request runs as its own task (a blocking watch does
    not hold up the heartbeats behind it); replies go out as they are ready, tagged with the
    request's sequence number."""

    def __init__(self, rpc: RPCServer):
        self.rpc = rpc
        self.transport: asyncio.Transport | None = None
        self.frames = FrameBuffer()
        self.tasks: set[asyncio.Task] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.rpc.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.rpc.connections.discard(self)
        self.transport = None
        for task in list(self.tasks):  # blocking watches of a client that went away
            task.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.frames.feed(data)
            requests = [decode_request(p) for p in payloads]
        except (FrameError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("rpc: closing the connection of %s: bad frame: %s",
                        self.transport.get_extra_info("peername") if self.transport else "?", exc)
            self.close()
            return
        loop = asyncio.get_running_loop()
        for req in requests:
            task = loop.create_task(self._serve(req))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _serve(self, req: Request) -> None:
        try:
            status, index, body = await self.rpc.handle(req)
            out = frame((req.seq, status, index, body))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an answer the client can read, never silence
            log.exception("rpc: %s %s failed", req.method, req.path)
            out = frame((req.seq, 500, 0, str(exc) or type(exc).__name__))
        if self.transport is not None:
            self.transport.write(out)


def info_route(rpc: RPCServer):
    """`GET /v1/internal/rpc` on the HTTP API: where this server's RPC listener is."""
    from aiohttp import web

    from yurt.http.wire import json_response
    from yurt.server.endpoints import EndpointError

    async def handler(request: web.Request) -> web.Response:
        if not rpc.port:
            raise EndpointError(404, "this server has no RPC listener")
        return json_response(request, rpc.info())

    return handler
