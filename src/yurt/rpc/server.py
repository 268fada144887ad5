"""The server's RPC listener (the agent's rpc port): the client-internal routes of
`yurt.agent.local_server.LocalServerAPI`, the same handlers the dev agent's in-process link
calls, over `yurt.rpc` frames. A lean asyncio Protocol: no per-request HTTP parsing,
routing table, middleware or response objects, which were a quarter of the server's CPU
while thousands of clients registered, heartbeated, watched and reported over HTTP."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

import msgspec

from yurt.agent.local_server import LocalServerAPI
from yurt.http.alloc_delta import node_allocs_now, node_allocs_ready
from yurt.http.alloc_encoding import encode_allocs_with_jobs
from yurt.http.query import wait_with_jitter
from yurt.state.commands import AllocUpdate
from yurt.state.txn import node_allocs_key
from yurt.state.watch import CallbackWaiter

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
        self._routes: dict[tuple[str, str], _Route] = {}
        self._deadlines: dict[int, set[_Watch]] = {}  # parked watches by deadline slot (`park`)

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

    def dispatch(self, req: Request, conn: "_Connection") -> None:
        """Answer `req` on `conn` (`_Connection.reply`), now or later. The client's steady
        traffic needs no task: the alloc watch waits as a `_Watch` (called back by the state's
        change watchers), a heartbeat and `allocs/get` are answered at once, `allocs/update`
        from its batch's future; anything else (registration) runs `handle` as a task."""
        method, path = req.method, req.path
        if path == INFO_PATH and method == "GET":
            conn.reply(req.seq, 200, 0, self.info())
            return
        params = req.params or {}
        found = self._route(method, path, params)
        if found.__class__ is tuple:
            conn.reply(req.seq, *found)
            return
        name, arg = found.name, found.arg
        try:
            if name == "_node_alloc_versions":
                _Watch(self, conn, req.seq, arg, params).start()
                return
            if name == "_node_heartbeat":
                self._answer(conn, req.seq, self.api.heartbeat_now(arg, _body(req.body)))
                return
            if name == "_allocs_update":
                index = self.api.allocs_update_start_raw(req.body)
                if isinstance(index, int):
                    self._answer(conn, req.seq, self.api.index_reply(index))
                else:
                    index.add_done_callback(lambda fut: self._updated(conn, req, fut))
                return
            if name == "_allocs_get":
                self._answer(conn, req.seq, self.api.allocs_get_now(_body(req.body)))
                return
        except Exception as exc:  # noqa: BLE001 - as `LocalServerAPI.call` maps it
            conn.reply_error(req.seq, exc, method, path)
            return
        conn.serve_in_task(req)

    def _updated(self, conn: "_Connection", req: Request, fut) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            conn.reply_error(req.seq, exc, req.method, req.path)
        else:
            self._answer(conn, req.seq, self.api.index_reply(fut.result()))

    @staticmethod
    def _answer(conn: "_Connection", seq: int, reply) -> None:
        body, meta = reply
        conn.reply(seq, 200, meta.last_index, body)

    def _route(self, method: str, path: str, params: dict) -> "_Route | tuple[int, int, Any]":
        """The route of a request served here, else (status, index, error text)."""
        server = self.server
        region = params.get("region")
        if region and region != server.config.region:
            return 500, 0, "No path to region"
        key = (method, path)
        route = self._routes.get(key)
        if route is None:
            found = self.api._handler(method, path)
            if found is None:
                return 404, 0, "404 page not found"
            if len(self._routes) >= self.api._ROUTES_MAX:
                self._routes.clear()
            route = self._routes[key] = _Route(*found)
        if server.state is None:
            return 500, 0, "No cluster leader"
        if route.is_write and not self.api._local(True):
            return USE_HTTP, 0, "send this request over HTTP"  # an HA follower: HTTP forwards writes
        return route

    def park(self, watch: "_Watch", delay: float) -> None:
        """Answer `watch` (`_Watch.expire`) `delay` seconds from now, at most TICK late: the
        parked watches' deadlines share one loop timer per TICK (a timer of the loop's own per
        watch cost more than the rest of its wait)."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + delay) / TICK)
        bucket = self._deadlines.get(slot)
        if bucket is None:
            bucket = self._deadlines[slot] = set()
            loop.call_at(slot * TICK, self._expire_slot, slot)
        bucket.add(watch)
        watch.slot = slot

    def unpark(self, watch: "_Watch") -> None:
        bucket = self._deadlines.get(watch.slot)
        if bucket is not None:
            bucket.discard(watch)

    def _expire_slot(self, slot: int) -> None:
        for watch in self._deadlines.pop(slot, ()):
            try:
                watch.expire()
            except Exception:  # noqa: BLE001 - one watch's failure must not strand the others
                log.exception("rpc: watch of node %s failed at its deadline", watch.node_id)

    async def handle(self, req: Request) -> tuple[int, int, Any]:
        """(status, index, body or error text), as the HTTP API would answer the request."""
        method, path = req.method, req.path
        if path == INFO_PATH and method == "GET":
            return 200, 0, self.info()
        params = req.params or {}
        found = self._route(method, path, params)
        if found.__class__ is tuple:
            return found
        try:
            body, meta = await getattr(self.api, found.name)(found.arg, params, _body(req.body))
        except Exception as exc:  # as `LocalServerAPI.call` maps it, without its coroutine
            error = self.api.api_error(exc, method, path)
            return error.status, 0, error.text
        return 200, meta.last_index, body


TICK = 0.25  # s: how late a watch may answer at the end of its wait (`RPCServer.park`)


class _Route:
    """A client-internal route: its `LocalServerAPI` method's name, and path argument."""

    __slots__ = ("arg", "is_write", "name")

    def __init__(self, handler, is_write: bool, arg: str):
        self.name, self.is_write, self.arg = handler.__name__, is_write, arg


class _Meta:
    """What the listener reads of a handler's `QueryMeta`: its index."""

    __slots__ = ("last_index",)

    def __init__(self, index: int):
        self.last_index = index if index > 1 else 1  # as `LocalServerAPI._meta`


def _body(raw: msgspec.Raw) -> Any:
    """A request body (kept as msgpack bytes by `decode_request`) as builtins."""
    return _decode_any(raw)


_decode_any = msgspec.msgpack.Decoder().decode


class _UpdatesBody(msgspec.Struct):
    Allocs: list[AllocUpdate] | None = None


_decode_updates = msgspec.msgpack.Decoder(_UpdatesBody).decode


class _Handlers(LocalServerAPI):
    """The in-process link's handlers, with allocations (the watch's delta and `allocs/get`)
    answered already encoded, each job version encoded once (`yurt.http.alloc_encoding`'s
    cache, msgpack) instead of converted to builtins per alloc: 3 us instead of 23 us an alloc."""

    def _with_jobs(self, snap, allocs: list) -> msgspec.Raw:
        return msgspec.Raw(encode_allocs_with_jobs(snap, allocs, _encoder))

    def allocs_update_start_raw(self, raw: msgspec.Raw):
        """`allocs_update_start` of a msgpack body, decoded straight into `AllocUpdate`s (no
        builtins in between); a body that does not decode so goes the lenient way, which
        words its errors as the HTTP API does."""
        try:
            updates = _decode_updates(raw).Allocs
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self.allocs_update_start(_body(raw))
        return self.allocs_update_decoded(updates)

    def index_reply(self, index: int):
        return {"Index": index}, self._meta(index)

    _meta = staticmethod(_Meta)  # the listener frames the index only: no QueryMeta per reply


class _Watch(CallbackWaiter):
    """One blocking alloc watch (`GET /v1/internal/node/:id/allocs`), waiting without a task:
    the state's change watchers call `wake()` at each write to the node's allocs, which
    answers when `alloc_delta.node_allocs_ready` has an answer and otherwise watches again;
    a timer answers at the end of `wait` (plus jitter), as `wait_node_allocs` does."""

    __slots__ = ("conn", "key", "known", "min_index", "node_id", "parked", "rpc", "seen", "seq", "slot", "store",
                 "want_delta", "wait")

    def __init__(self, rpc: RPCServer, conn: "_Connection", seq: int, node_id: str, params: dict):
        self.rpc, self.conn, self.seq, self.node_id = rpc, conn, seq, node_id
        self.min_index, self.wait, self.known, self.want_delta = rpc.api.watch_params(params)
        self.store = rpc.server.state
        self.key = node_allocs_key(node_id)
        self.parked = False
        self.seen = self.slot = 0

    def start(self) -> None:
        if self._check():
            return
        self.loop = asyncio.get_running_loop()
        delay = wait_with_jitter(self.wait)
        if delay <= 0:
            self._answer(node_allocs_now(self.store.snapshot(), self.node_id, self.key))
            return
        self.rpc.park(self, delay)
        self.parked = True
        self.conn.watches.add(self)
        self._park()

    def _check(self) -> bool:
        snapshot = self.store.snapshot()
        index = snapshot.table_index(self.key)
        answer = None
        if index > self.min_index or self.min_index <= 0:  # else nothing to answer yet
            answer = node_allocs_ready(snapshot, self.node_id, self.min_index, self.known, self.key, index)
        if answer is None:
            self.seen = snapshot.index
            return False
        self._answer(answer)
        return True

    def _park(self) -> None:
        store = self.store
        store.watch((self.key,), self)
        if store.latest_index != self.seen:  # a write (on another thread) since the check
            store.unwatch(self)
            self.wake()

    def wake(self) -> None:
        if self.conn is None:  # answered or cancelled
            return
        if not self._check():
            self._park()

    def expire(self) -> None:
        """The end of its wait (`RPCServer.park`): answer with the node's allocs as they are."""
        if self.conn is None:
            return
        self.store.unwatch(self)
        self._answer(node_allocs_now(self.store.snapshot(), self.node_id, self.key))

    def cancel(self) -> None:
        """The connection is gone: stop waiting."""
        if self.conn is None:
            return
        self.conn = None
        self.store.unwatch(self)
        if self.parked:
            self.rpc.unpark(self)

    def _answer(self, answer) -> None:
        conn, self.conn = self.conn, None
        if self.parked:
            self.rpc.unpark(self)
            conn.watches.discard(self)
        try:
            body, meta = self.rpc.api.watch_reply(answer, self.min_index, self.want_delta)
        except Exception as exc:  # noqa: BLE001 - as `LocalServerAPI.call` maps it
            conn.reply_error(self.seq, exc, "GET", f"/v1/internal/node/{self.node_id}/allocs")
            return
        conn.reply(self.seq, 200, meta.last_index, body)


class _Connection(asyncio.Protocol):
    """One client's connection: requests are dispatched as they arrive (`RPCServer.dispatch`:
    a blocking watch does not hold up the heartbeats behind it); replies go out as they are
    ready, tagged with the request's sequence number."""

    def __init__(self, rpc: RPCServer):
        self.rpc = rpc
        self.transport: asyncio.Transport | None = None
        self.frames = FrameBuffer()
        self.tasks: set[asyncio.Task] = set()
        self.watches: set[_Watch] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.rpc.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.rpc.connections.discard(self)
        self.transport = None
        for task in list(self.tasks):  # requests of a client that went away
            task.cancel()
        for watch in list(self.watches):  # its blocking watches
            watch.cancel()
        self.watches.clear()

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
        dispatch = self.rpc.dispatch
        for req in requests:
            try:
                dispatch(req, self)
            except Exception as exc:  # noqa: BLE001 - an answer the client can read, never silence
                log.exception("rpc: %s %s failed", req.method, req.path)
                self.reply(req.seq, 500, 0, _error_text(exc))

    def serve_in_task(self, req: Request) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(req))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, req: Request) -> None:
        try:
            status, index, body = await self.rpc.handle(req)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an answer the client can read, never silence
            log.exception("rpc: %s %s failed", req.method, req.path)
            status, index, body = 500, 0, _error_text(exc)
        self.reply(req.seq, status, index, body)

    def reply(self, seq: int, status: int, index: int, body: Any) -> None:
        """Frame and send one reply (if the client is still there)."""
        try:
            out = frame((seq, status, index, body))
        except Exception as exc:  # noqa: BLE001 - an answer the client can read, never silence
            log.exception("rpc: reply %s could not be framed", seq)
            out = frame((seq, 500, 0, _error_text(exc)))
        if self.transport is not None:
            self.transport.write(out)

    def reply_error(self, seq: int, exc: Exception, method: str, path: str) -> None:
        """Reply with `exc` as the HTTP API words it (`LocalServerAPI.api_error`)."""
        error = self.rpc.api.api_error(exc, method, path)
        self.reply(seq, error.status, 0, error.text)


def _error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


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
