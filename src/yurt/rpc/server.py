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
from yurt.http.alloc_encoding import allocs_with_encoded_jobs
from yurt.http.query import wait_with_jitter
from yurt.server.endpoints import EndpointError
from yurt.state.commands import AllocUpdate
from yurt.state.txn import node_allocs_key
from yurt.state.watch import CallbackWaiter

from . import HEADER, INFO_PATH, USE_HTTP, FrameBuffer, FrameError, Request, decode_request, frame

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
        traffic needs no task: the alloc watch waits as a `_Watch` (called back through its
        connection's `_NodeWatch` by the state's change watchers), a heartbeat and
        `allocs/get` are answered at once, `allocs/update` by its batch's flush
        (`_Connection.ack`); anything else (registration) runs `handle` as a task."""
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
                seq = req.seq
                index = self.api.allocs_update_then(req.body, lambda index, exc: conn.ack(seq, index, exc))
                if index.__class__ is int:
                    conn.ack(seq, index, None)
                elif index is not None:  # a body decoded the lenient way: its future
                    index.add_done_callback(lambda fut: self._updated(conn, req, fut))
                return
            if name == "_allocs_get":
                self._answer(conn, req.seq, self.api.allocs_get_now(_body(req.body)))
                return
        except Exception as exc:  # noqa: BLE001 - as `LocalServerAPI.call` maps it
            conn.reply_error(req.seq, exc, method, path)
            return
        conn.serve_in_task(req)

    @staticmethod
    def _updated(conn: "_Connection", req: Request, fut) -> None:
        if not fut.cancelled():
            exc = fut.exception()
            conn.ack(req.seq, None if exc is not None else fut.result(), exc)

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
    answered as structs for the reply's frame to encode, each job version encoded once
    (`yurt.http.alloc_encoding`'s cache, msgpack) instead of converted to builtins per alloc:
    3 us instead of 23 us an alloc. The allocations go without their `Metrics` (the
    scheduler's placement report: nodes evaluated, the top node scores), which no client
    reads (an operator reads them from the server's API): ~40% of a watch answer's encode
    and a fifth of its bytes (W1: 2 allocs an answer, 10 -> 5.5 us)."""

    def _with_jobs(self, snap, allocs: list) -> list:
        # the reply's frame encodes them (one encode and copy less than a `msgspec.Raw` of them)
        return allocs_with_encoded_jobs(snap, allocs, _encoder, metrics=False)

    def allocs_update_then(self, raw: msgspec.Raw, done):
        """`allocs_update_start` of a msgpack body, decoded straight into `AllocUpdate`s (no
        builtins in between) and handed to the batcher with `done` to call back
        (`AllocUpdateBatcher.submit_then`: the index now, or None). A body that does not
        decode so goes the lenient way, which words its errors as the HTTP API does (the
        index now, or a future of it)."""
        try:
            updates = _decode_updates(raw).Allocs
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self.allocs_update_start(_body(raw))
        if not updates:
            raise EndpointError(400, "must update at least one allocation")
        return self.server.alloc_updates.submit_then(updates, done)

    _meta = staticmethod(_Meta)  # the listener frames the index only: no QueryMeta per reply


class _NodeWatch(CallbackWaiter):
    """A connection's watch on one node's allocs (the state key `allocs:node:<id>`): watched
    (`ChangeWatchers.watch(keep=True)`) from the connection's first alloc watch of the node
    until the connection closes, so that a blocking request registers nothing of its own.
    Each write to the node's allocs calls `wake()`, which checks the node's requests that
    wait now (`waiting`: a client has one at a time) against one snapshot.

    A delta request's answer depends on the node's version map only (`alloc_delta`): a
    write that changes no node's map (a batch of status reports: client fields only) cannot
    answer it, and does not wake the node's watch while only delta requests wait
    (`versions_only`, read by `ChangeWatchers.notify`). A full-form request (no `known`)
    answers at any write to the node's allocs."""

    __slots__ = ("store", "versions_only", "waiting")

    def __init__(self, loop, store) -> None:
        self.loop, self.store = loop, store
        self.waiting: list[_Watch] = []
        self.versions_only = True

    def wake(self) -> None:
        waiting = self.waiting
        if not waiting:
            return
        snapshot = self.store.snapshot()
        if len(waiting) == 1:
            waiting[0].check(snapshot)
            return
        for watch in list(waiting):  # each answered one leaves the list
            watch.check(snapshot)

    def left(self) -> None:
        """A full-form request stopped waiting."""
        self.versions_only = all(w.known is not None for w in self.waiting)


NODE_WATCHES_MAX = 64  # node watches a connection keeps while idle (a client watches its own node)


class _Watch:
    """One blocking alloc watch (`GET /v1/internal/node/:id/allocs`), waiting without a task:
    its connection's `_NodeWatch` of the node calls `check()` at each write to the node's
    allocs, which answers when `alloc_delta.node_allocs_ready` has an answer and otherwise
    keeps waiting; a timer answers at the end of `wait` (plus jitter), as `wait_node_allocs`
    does."""

    __slots__ = ("conn", "key", "known", "min_index", "node_id", "node_watch", "rpc", "seq", "slot", "store",
                 "want_delta", "wait")

    def __init__(self, rpc: RPCServer, conn: "_Connection", seq: int, node_id: str, params: dict):
        self.rpc, self.conn, self.seq, self.node_id = rpc, conn, seq, node_id
        self.min_index, self.wait, self.known, self.want_delta = rpc.api.watch_params(params)
        self.store = rpc.server.state
        self.key = node_allocs_key(node_id)
        self.node_watch: _NodeWatch | None = None
        self.slot = 0

    def start(self) -> None:
        store = self.store
        snapshot = store.snapshot()
        if self.check(snapshot):
            return
        delay = wait_with_jitter(self.wait)
        if delay <= 0:
            self._answer(node_allocs_now(store.snapshot(), self.node_id, self.key))
            return
        conn = self.conn
        node_watch = conn.node_watches.get(self.node_id)
        watched_now = node_watch is None
        if watched_now:
            node_watch = conn.watch_node(self.node_id, self.key, store)
        self.rpc.park(self, delay)
        self.node_watch = node_watch
        node_watch.waiting.append(self)
        if self.known is None:  # a full-form request: any write to the node's allocs answers it
            node_watch.versions_only = False
        elif not watched_now:
            return
        if store.latest_index != snapshot.index:  # a write (on another thread) before it was watched so
            self.check()

    def check(self, snapshot=None) -> bool:
        """Answer if the node's allocs have an answer for it now (in `snapshot`, else the
        latest state); True when answered."""
        if self.conn is None:  # answered or cancelled
            return True
        if snapshot is None:
            snapshot = self.store.snapshot()
        index = snapshot.table_index(self.key)
        min_index = self.min_index
        if index <= min_index and min_index > 0:  # nothing to answer yet
            return False
        answer = node_allocs_ready(snapshot, self.node_id, min_index, self.known, self.key, index)
        if answer is None:
            return False
        self._answer(answer)
        return True

    def expire(self) -> None:
        """The end of its wait (`RPCServer.park`): answer with the node's allocs as they are."""
        if self.conn is not None:
            self._answer(node_allocs_now(self.store.snapshot(), self.node_id, self.key))

    def cancel(self) -> None:
        """The connection is gone: stop waiting."""
        if self.conn is not None:
            self.conn = None
            self._leave()

    def _leave(self) -> None:
        node_watch, self.node_watch = self.node_watch, None
        if node_watch is not None:
            node_watch.waiting.remove(self)
            self.rpc.unpark(self)
            if self.known is None:
                node_watch.left()

    def _answer(self, answer) -> None:
        conn, self.conn = self.conn, None
        self._leave()
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
        self.node_watches: dict[str, _NodeWatch] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.rpc.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.rpc.connections.discard(self)
        self.transport = None
        for task in list(self.tasks):  # requests of a client that went away
            task.cancel()
        node_watches, self.node_watches = self.node_watches, {}
        for node_watch in node_watches.values():  # its blocking watches
            node_watch.store.unwatch(node_watch)
            for watch in list(node_watch.waiting):
                watch.cancel()

    def watch_node(self, node_id: str, key: str, store) -> _NodeWatch:
        """The connection's `_NodeWatch` of the node, watched from now on."""
        node_watches = self.node_watches
        if len(node_watches) >= NODE_WATCHES_MAX:  # a client watching many nodes: keep the busy ones
            for idle in [n for n, w in node_watches.items() if not w.waiting]:
                idle_watch = node_watches.pop(idle)
                idle_watch.store.unwatch(idle_watch)
        node_watch = node_watches[node_id] = _NodeWatch(asyncio.get_running_loop(), store)
        store.watch((key,), node_watch, True)
        return node_watch

    @property
    def watches(self) -> list[_Watch]:
        """The blocking watches waiting on this connection."""
        return [w for node_watch in self.node_watches.values() for w in node_watch.waiting]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            size = len(data) - 4
            if size > 0 and not self.frames.buf and _unpack_size(data)[0] == size:
                requests = (decode_request(data[4:]),)  # the common case: one whole frame
            else:
                requests = [decode_request(p) for p in self.frames.feed(data)]
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
        """Frame and send one reply (if the client is still there): one write."""
        try:
            out = frame((seq, status, index, body))
        except Exception as exc:  # noqa: BLE001 - an answer the client can read, never silence
            log.exception("rpc: reply %s could not be framed", seq)
            out = frame((seq, 500, 0, _error_text(exc)))
        if self.transport is not None:
            self.transport.write(out)

    def ack(self, seq: int, index: int | None, exc: Exception | None) -> None:
        """Answer a status update (`allocs/update`) with the index that carries it, or its error."""
        if exc is not None:
            self.reply_error(seq, exc, "PUT", "/v1/internal/allocs/update")
        elif self.transport is not None:
            self.transport.write(_ack_frame(seq, index))

    def reply_error(self, seq: int, exc: Exception, method: str, path: str) -> None:
        """Reply with `exc` as the HTTP API words it (`LocalServerAPI.api_error`)."""
        error = self.rpc.api.api_error(exc, method, path)
        self.reply(seq, error.status, 0, error.text)


_unpack_size = HEADER.unpack_from
_pack_size = HEADER.pack
_ack_tail: tuple[int | None, bytes] = (None, b"")  # an index, and an ack reply of it encoded after its seq


def _ack_frame(seq: int, index: int) -> bytes:
    """`frame((seq, 200, index, {"Index": index}))` (X-Nomad-Index at least 1, as the HTTP
    API says): a flush acknowledges its whole batch with one index, so the reply after
    its seq is encoded once per flush."""
    global _ack_tail
    tail_index, tail = _ack_tail
    if tail_index != index:
        tail = _encoder.encode((200, index if index > 1 else 1, {"Index": index}))[1:]
        _ack_tail = (index, tail)
    payload = b"\x94" + _encoder.encode(seq) + tail  # msgpack: an array of 4, then its items
    return _pack_size(len(payload)) + payload


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
