"""Watchers' blocking GETs answered below aiohttp's request machinery.

`GET /v1/node/:id?index=N&wait=D` is the hottest request there is: every write to a node wakes
its watchers and each asks again at once. aiohttp spends most of such a wake's CPU on its
general machinery (a request object, a task per request, the router, the middleware chain, a
response object, then a future and a timer per wait). `FastGetHandler`, the connection's
protocol, takes such a request straight from aiohttp's parser when the connection is idle and
answers it itself with the bytes the route sends (`wire.ok_bytes`, the blocking queries' shared
answer cache): at once when its index has passed, else parked on the state's change watchers
as a `CallbackWaiter` (no task, no future; woken in one batch per write) until it passes or
the wait (with Nomad's jitter) runs out, as `query.blocking_query` does.

Everything else goes through aiohttp and the routes as before: other routes, query parameters
other than `index` and `wait`, percent-encoded targets, HTTP/1.0, `Connection: close`, HEAD,
bodies, `Expect`, pipelined requests, an unknown node or an ID prefix, no state, access
logging or `on_response_prepare` hooks. A parked request whose node is gone when it wakes is
handed to aiohttp (the route answers its 404)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server as _AiohttpServer

from yurt.state.txn import node_key
from yurt.state.watch import CallbackWaiter

from .context import SERVER_KEY
from .query import DEFAULT_WAIT, _wait_seconds, remember_answer, responses_of, wait_with_jitter, watcher_key
from .routes_reads import node_answer
from .wire import json_answer, ok_bytes

NODE_PREFIX = "/v1/node/"


class FastGetHandler(RequestHandler):
    """aiohttp's connection protocol, plus the watchers' fast path (module docstring)."""

    __slots__ = ("_yurt_server", "_parked", "_held")

    def __init__(self, manager, *, yurt_server, **kwargs):
        super().__init__(manager, **kwargs)
        self._yurt_server = yurt_server
        self._parked: _ParkedGet | None = None
        self._held = b""  # what the client sent while a fast request was out (pipelining)

    def data_received(self, data: bytes) -> None:
        if self._parked is not None:
            self._held += data
            return
        waiter = self._waiter
        if (waiter is None or waiter.done() or self._messages or self._upgraded
                or self._payload_parser is not None or self._logging_enabled):
            return super().data_received(data)
        self._waiter = None  # parse without waking start(): the request may be answered here
        try:
            super().data_received(data)
        finally:
            self._waiter = waiter
        messages = self._messages
        if self._force_close or self._close:
            waiter.cancel()  # what close() / force_close() do to start()'s waiter
        elif len(messages) == 1 and self._take(*messages[0]):
            messages.popleft()
            if self._parser is not None:
                self._parser.message_consumed()
        elif messages:
            waiter.set_result(None)

    def _take(self, message, payload) -> bool:
        """Answer or park `message` here if it is a plain watcher's GET; False: aiohttp's."""
        if (message.method != "GET" or payload is not EMPTY_PAYLOAD or message.version != HttpVersion11
                or message.should_close or message.upgrade):
            return False
        target = message.path
        if not target.startswith(NODE_PREFIX) or "%" in target or "+" in target or "#" in target:
            return False
        path, _, query = target.partition("?")
        node_id = path[len(NODE_PREFIX):]
        if not node_id or "/" in node_id:
            return False
        min_index, wait = 0, DEFAULT_WAIT
        seen = set()
        for part in query.split("&") if query else ():
            name, _, value = part.partition("=")
            if name in seen:
                return False
            seen.add(name)
            try:
                if name == "index":
                    min_index = int(value)
                elif name == "wait":
                    wait = _wait_seconds(value)
                else:
                    return False
            except (ValueError, TypeError):
                return False  # the route answers the 400
        headers = message.headers
        if "Expect" in headers:
            return False
        store = self._yurt_server.state
        if store is None or self.transport is None:
            return False
        snapshot = store.snapshot()
        if snapshot.node_by_id(node_id) is None:
            return False  # unknown, or an ID prefix: the route's lookup and answer
        self._manager.requests_count += 1
        self._manager.fast_requests += 1
        get = _ParkedGet(self, message, store, path, node_id, headers.get("X-Nomad-Token", ""), min_index)
        get.check(snapshot, wait)
        return True

    def _answered(self) -> None:
        """After a fast answer: the keep-alive bookkeeping aiohttp's `start` does after each
        request, and what the client sent meanwhile is read now."""
        self._parked = None
        loop = self._loop
        self._keepalive = True
        self._next_keepalive_close_time = loop.time() + self._keepalive_timeout
        if self._keepalive_handle is None and self._keepalive_timeout > 0:
            self._keepalive_handle = loop.call_at(self._next_keepalive_close_time, self._process_keepalive)
        held, self._held = self._held, b""
        if held:
            self.data_received(held)

    def connection_lost(self, exc: BaseException | None) -> None:
        parked = self._parked
        if parked is not None:
            parked.cancel()
            self._parked = None
        super().connection_lost(exc)


class _ParkedGet(CallbackWaiter):
    """One fast `GET /v1/node/:id`, from its parse to its answer."""

    __slots__ = ("handler", "message", "store", "path", "node_id", "token", "min_index", "table_index",
                 "deadline", "timer")

    def __init__(self, handler: FastGetHandler, message, store, path: str, node_id: str, token: str, min_index: int):
        self.handler, self.message, self.store = handler, message, store
        self.path, self.node_id, self.token, self.min_index = path, node_id, token, min_index
        self.loop = handler._loop
        self.tables = (node_key(node_id),)
        self.table_index = 0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def check(self, snapshot, wait: float) -> None:
        node = snapshot.node_by_id(self.node_id)
        table_index = snapshot.table_index(self.tables[0])
        index = (node.modify_index if node is not None else None) or table_index
        if 0 < self.min_index and index <= self.min_index:
            self.deadline = self.loop.time() + wait_with_jitter(wait)
            if self.deadline > self.loop.time():
                self.park(table_index)
                return
        self.answer(snapshot)

    def park(self, table_index: int) -> None:
        handler, store = self.handler, self.store
        handler._parked = self
        self.table_index = table_index
        store.watch(self.tables, self)
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadline, self.expire)
            # aiohttp closes a connection idle past its keep-alive time; a parked one is not idle
            handler._next_keepalive_close_time = max(handler._next_keepalive_close_time,
                                                     self.deadline + handler._keepalive_timeout)
        if store.max_table_index(self.tables) > table_index:  # changed meanwhile (another thread)
            self.loop.call_soon(self.wake)

    def wake(self) -> None:
        if self.handler._parked is not self:
            return  # answered, expired or gone meanwhile
        snapshot = self.store.snapshot()
        node = snapshot.node_by_id(self.node_id)
        table_index = snapshot.table_index(self.tables[0])
        index = (node.modify_index if node is not None else None) or table_index
        if index > self.min_index:
            self.answer(snapshot)
        else:
            self.park(table_index)

    def expire(self) -> None:
        self.timer = None
        if self.handler._parked is self:
            self.store.unwatch(self)
            self.answer(self.store.snapshot())

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.store.unwatch(self)

    def answer(self, snapshot) -> None:
        handler = self.handler
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        node = snapshot.node_by_id(self.node_id)
        if node is None:
            return self.hand_over()
        responses = responses_of(self.store)
        key = watcher_key(self.path, self.token, snapshot.index)
        cached = responses.get(key)
        if cached is None:
            index = node.modify_index or snapshot.table_index(self.tables[0])
            cached = remember_answer(responses, key, json_answer(node_answer(node), index))
        body, _, head = cached
        if head is None:
            return self.hand_over()
        transport = handler.transport
        if transport is None or transport.is_closing():
            handler._parked = None
            return
        transport.write(ok_bytes(head, body))
        handler._answered()

    def hand_over(self) -> None:
        """aiohttp's `start` takes the request (the route answers it, e.g. a 404)."""
        handler = self.handler
        handler._parked = None
        handler._messages.append((self.message, EMPTY_PAYLOAD))
        waiter = handler._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        held, handler._held = handler._held, b""
        if held:
            handler.data_received(held)


class FastGetServer(_AiohttpServer):
    """aiohttp's `Server` (the listening socket's protocol factory) making `FastGetHandler`s."""

    yurt_server = None
    fast_requests = 0  # requests taken by the fast path

    def __call__(self) -> RequestHandler:
        return FastGetHandler(self, loop=self._loop, yurt_server=self.yurt_server, **self._kwargs)


class AppRunner(web.AppRunner):
    """`web.AppRunner` whose connections take the watchers' fast path (module docstring)
    when the app has a yurt server and no `on_response_prepare` hooks."""

    async def _make_server(self):
        server = await super()._make_server()
        yurt_server = self.app.get(SERVER_KEY)
        if yurt_server is not None and not self.app.on_response_prepare and type(server) is _AiohttpServer:
            server.__class__ = FastGetServer  # same object, same state: only its protocol class differs
            server.yurt_server = yurt_server
        return server
