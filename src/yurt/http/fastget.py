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
handed to aiohttp (the route answers its 404).

A watcher asks with the same bytes every time but for the index: each connection keeps the
last request it took as a template (`_Template`), so the next is read by comparing bytes.
Its answer is encoded once per node version (`FastGetServer.node_answer`), whole with its
Date once a second.

The writes that wake them, `PUT /v1/internal/node/register` with the whole body in hand and
a body that decodes directly, take the same way round aiohttp (`_ParkedRegister`): the
register is submitted to the loop turn's batch as the route does and answered with the
route's bytes; a register that fails is handed to aiohttp, whose route answers the error."""

from __future__ import annotations

import logging
import math
import re

from aiohttp import web
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.web_server import Server as _AiohttpServer

from yurt.server.endpoints.nodes import submit_register
from yurt.state.txn import node_key
from yurt.state.watch import CallbackWaiter

from .context import SERVER_KEY
from .node_decode import decode_node_register
from .query import DEFAULT_WAIT, _wait_seconds, wait_with_jitter
from .routes_reads import node_answer
from .wire import json_answer, ok_bytes, rfc822_formatted_time, serialize_headers

NODE_PREFIX = b"GET /v1/node/"
REGISTER_LINES = (b"PUT /v1/internal/node/register HTTP/1.1\r\n", b"POST /v1/internal/node/register HTTP/1.1\r\n")
MAX_REQUEST = 8190  # aiohttp's max_line_size: anything longer is aiohttp's to refuse
MAX_HEADERS = 128
# header lines aiohttp's parser takes as they are: a token, a colon, visible ASCII and blanks
_PLAIN_HEADERS = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e]*\r\n)*")
# headers that change how a request is read or answered: any of them, and aiohttp takes it
_LEFT_TO_AIOHTTP = frozenset(("content-length", "transfer-encoding", "expect", "upgrade", "connection"))
_BODY_LEFT_TO_AIOHTTP = _LEFT_TO_AIOHTTP - {"content-length"}  # a register's body has its Content-Length
DEADLINE_TICK = 0.05  # parked requests run out in shared timers, at most this late
HELD_LIMIT = 2**16  # what a client may send while its request is parked before reading pauses
ANSWER_CACHE_SIZE = 1024  # nodes' answers kept (`FastGetServer.node_answer`); all dropped when full

log = logging.getLogger(__name__)


class FastGetHandler(RequestHandler):
    """aiohttp's connection protocol, plus the watchers' fast path (module docstring)."""

    __slots__ = ("_yurt_server", "_parked", "_held", "_clean", "_held_paused", "_template", "_fresh")

    def __init__(self, manager, *, yurt_server, **kwargs):
        super().__init__(manager, **kwargs)
        self._yurt_server = yurt_server
        self._parked: _ParkedGet | None = None
        self._held = b""  # what the client sent while a fast request was out (pipelining)
        self._clean = True  # aiohttp's parser holds no part of a request
        self._held_paused = False
        self._template: _Template | None = None  # the last fast request, but for its index
        self._fresh = True  # aiohttp has read nothing yet: its `start` has no request in hand

    def data_received(self, data: bytes) -> None:
        if self._parked is not None:
            self._held += data
            if len(self._held) > HELD_LIMIT and not self._held_paused and self.transport is not None:
                self._held_paused = True
                self.transport.pause_reading()
            return
        waiter = self._waiter
        if (self._clean and (self._fresh or (waiter is not None and not waiter.done())) and not self._messages
                and not self._logging_enabled):
            if data.startswith(NODE_PREFIX):
                if self._take(data):
                    return
            elif data.startswith(REGISTER_LINES) and self._take_register(data):
                return
        self._to_aiohttp(data)

    def _to_aiohttp(self, data: bytes) -> None:
        """aiohttp's own reading; notes whether its parser is left holding part of a request:
        not when this data ended with the head of a request without a body (a request's head
        ends at its first blank line, so a part of one cannot end with one)."""
        before = self._request_count
        self._fresh = False
        super().data_received(data)
        messages = self._messages
        self._clean = bool(self._request_count > before and messages and data.endswith(b"\r\n\r\n")
                           and messages[-1][1] is EMPTY_PAYLOAD and not isinstance(messages[-1][0], _ErrInfo)
                           and not self._upgraded and not self._buffer_paused and self._payload_parser is None)

    def _take(self, data: bytes) -> bool:
        """Answer or park `data` here if it is exactly one plain watcher's GET (module
        docstring); False: aiohttp's. A watcher asks the same bytes again and again but for
        the index: a request that is the last one taken with other digits there is read
        as that one was (`_Template`), without parsing it again."""
        template = self._template
        if template is not None:
            min_index = template.index_in(data)
            if min_index is not None:
                return self._serve(data, template.path, template.node_id, template.token, min_index, template.wait)
        parsed = self._parse(data)
        if parsed is None:
            return False
        path, node_id, token, min_index, wait, digits = parsed
        if not self._serve(data, path, node_id, token, min_index, wait):
            return False
        self._template = _Template.of(data, digits, path, node_id, token, wait)
        return True

    def _parse(self, data: bytes) -> tuple | None:
        """(path, node ID, token, index, wait, where the index's digits are) of a plain
        watcher's GET; None when aiohttp must read it."""
        end = data.find(b"\r\n\r\n")
        if end != len(data) - 4 or end > MAX_REQUEST or not data.isascii():
            return None
        text = data.decode("ascii")
        line_end = text.index("\r\n")
        parts = text[:line_end].split(" ")
        headers = _plain_headers(text, line_end, end, _LEFT_TO_AIOHTTP)
        if len(parts) != 3 or parts[2] != "HTTP/1.1" or headers is None:
            return None
        token = headers.get("x-nomad-token", "")
        target = parts[1]
        if "%" in target or "+" in target or "#" in target:
            return None
        path, _, query = target.partition("?")
        node_id = path[len(NODE_PREFIX) - 4:]
        if not node_id or "/" in node_id:
            return None
        min_index, wait, seen, digits = 0, DEFAULT_WAIT, set(), None
        at = len(parts[0]) + 1 + len(path) + 1  # where the query starts in `data`
        for part in query.split("&") if query else ():
            name, _, value = part.partition("=")
            if name in seen:
                return None
            seen.add(name)
            try:
                if name == "index":
                    min_index = int(value)
                    if value.isdigit():
                        digits = (at + len(name) + 1, at + len(part))
                elif name == "wait":
                    wait = _wait_seconds(value)
                else:
                    return None
            except (ValueError, TypeError):
                return None  # the route answers the 400
            at += len(part) + 1
        return path, node_id, token, min_index, wait, digits

    def _take_register(self, data: bytes) -> bool:
        """`PUT /v1/internal/node/register` with its whole body in `data`, which decodes
        directly (`decode_node_register`), on the leader: registered here (batched with the
        loop turn's other registers, as the route does) and answered with the route's bytes.
        Anything else, and a register that fails (the route answers its error), is aiohttp's."""
        end = data.find(b"\r\n\r\n")
        if end < 0 or end > MAX_REQUEST or not data.isascii():
            return False
        text = data[:end + 4].decode("ascii")
        headers = _plain_headers(text, text.index("\r\n"), end, _BODY_LEFT_TO_AIOHTTP)
        length = headers.get("content-length") if headers is not None else None
        if length is None or not length.isdigit() or int(length) != len(data) - end - 4:
            return False
        server = self._yurt_server
        if server.state is None or self.transport is None or (
                getattr(server, "leadership", None) is not None and not server.leader):
            return False  # an HA follower forwards writes (`leader_forward`)
        node = decode_node_register(data[end + 4:])
        if node is None:
            return False
        self._request_count += 1
        self._manager.requests_count += 1
        self._manager.fast_requests += 1
        self._parked = _ParkedRegister(self, data, server, node)
        return True

    def _serve(self, data: bytes, path: str, node_id: str, token: str, min_index: int, wait: float) -> bool:
        """Answer or park a parsed watcher's GET; False: aiohttp's after all."""
        store = self._yurt_server.state
        if store is None or self.transport is None:
            return False
        snapshot = store.snapshot()
        node = snapshot.node_by_id(node_id)
        if node is None:
            return False  # unknown, or an ID prefix: the route's lookup and answer
        self._request_count += 1
        self._manager.requests_count += 1
        self._manager.fast_requests += 1
        parked = _ParkedGet(self, data, store, path, node_id, token, min_index)
        try:
            parked.check(snapshot, wait, node)
        except Exception:  # noqa: BLE001 - aiohttp and the route answer it (a 500 if it fails there too)
            log.exception("fast GET %s failed; handed to aiohttp", path)
            parked.cancel()
            self._parked = None
            return False
        return True

    def _take_back(self) -> bytes:
        """What the client sent while a request was parked (reading resumes)."""
        held, self._held = self._held, b""
        if self._held_paused:
            self._held_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return held

    def _answered(self) -> None:
        """After a fast answer: the keep-alive bookkeeping aiohttp's `start` does after each
        request, and what the client sent meanwhile is read now."""
        self._parked = None
        loop = self._loop
        self._keepalive = True
        self._next_keepalive_close_time = loop.time() + self._keepalive_timeout
        if self._keepalive_handle is None and self._keepalive_timeout > 0:
            self._keepalive_handle = loop.call_at(self._next_keepalive_close_time, self._process_keepalive)
        if self._close or self._force_close:  # closing (shutdown): as aiohttp after a response
            if self.transport is not None:
                self.transport.close()
            return
        held = self._take_back()
        if held:
            self.data_received(held)

    def connection_lost(self, exc: BaseException | None) -> None:
        parked = self._parked
        if parked is not None:
            parked.cancel()
            self._parked = None
        super().connection_lost(exc)


def _plain_headers(text: str, line_end: int, end: int, refused: frozenset) -> dict[str, str] | None:
    """The header lines of a request head (`text[line_end + 2:end]`), by lower-case name, when
    aiohttp's parser takes them as they are and none is named twice or in `refused`."""
    if not _PLAIN_HEADERS.fullmatch(text, line_end + 2, end + 2):
        return None
    lines = text[line_end + 2:end].split("\r\n") if end > line_end else ()
    if len(lines) > MAX_HEADERS:
        return None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        name = name.lower()
        if name in headers or name in refused:
            return None
        headers[name] = value.strip(" \t")
    return headers


class _ParkedRegister:
    """A fast node register, from its parse to its answer (the connection holds what the
    client sends meanwhile, as for a parked GET)."""

    __slots__ = ("handler", "raw")

    def __init__(self, handler: FastGetHandler, raw: bytes, server, node):
        self.handler, self.raw = handler, raw
        handler._loop.create_task(submit_register(server, node)).add_done_callback(self.done)

    def done(self, task) -> None:
        handler = self.handler
        if handler._parked is not self:
            return  # the client is gone
        if task.cancelled() or task.exception() is not None:
            # nothing of it was applied: aiohttp and the route answer it (its 400 or 500)
            return hand_over(self)
        index, ttl = task.result()
        resp = json_answer({"Index": index, "HeartbeatTTL": ttl}, index)
        transport = handler.transport
        if transport is None or transport.is_closing():
            handler._parked = None
            return
        transport.write(ok_bytes(serialize_headers(resp.headers), resp.body))
        handler._answered()

    def cancel(self) -> None:
        """The client is gone: the register goes on (as the route's would), unanswered."""


def hand_over(parked) -> None:
    """aiohttp reads a parked request after all (the route answers it, e.g. a 404): its parser
    has seen nothing since it was clean, so it gets the request and what followed it."""
    handler = parked.handler
    handler._parked = None
    handler._to_aiohttp(parked.raw + handler._take_back())


class _Template:
    """A fast request taken on a connection, cut around its `index` digits: the next request
    that has the same bytes around other digits has the same path, node, token and wait."""

    __slots__ = ("head", "tail", "fixed", "path", "node_id", "token", "wait")

    def __init__(self, head: bytes, tail: bytes, path: str, node_id: str, token: str, wait: float):
        self.head, self.tail, self.fixed = head, tail, len(head) + len(tail)
        self.path, self.node_id, self.token, self.wait = path, node_id, token, wait

    @classmethod
    def of(cls, data: bytes, digits: tuple[int, int] | None, *parsed) -> "_Template | None":
        return None if digits is None else cls(data[:digits[0]], data[digits[1]:], *parsed)

    def index_in(self, data: bytes) -> int | None:
        """The index of `data` if it is this request with (up to 18) other digits."""
        size = len(data)
        if (0 < size - self.fixed <= 18 and size - 4 <= MAX_REQUEST and data.startswith(self.head)
                and data.endswith(self.tail)):
            digits = data[len(self.head):size - len(self.tail)]
            if digits.isdigit():
                return int(digits)
        return None


class _ParkedGet(CallbackWaiter):
    """One fast `GET /v1/node/:id`, from its parse to its answer."""

    __slots__ = ("handler", "raw", "store", "path", "node_id", "token", "min_index", "table_index", "slot")

    def __init__(self, handler: FastGetHandler, raw: bytes, store, path: str, node_id: str, token: str,
                 min_index: int):
        self.handler, self.raw, self.store = handler, raw, store
        self.path, self.node_id, self.token, self.min_index = path, node_id, token, min_index
        self.loop = handler._loop
        self.tables = (node_key(node_id),)
        self.table_index = 0
        self.slot = 0  # the deadline's tick (`FastGetServer.run_out_at`), once parked

    def check(self, snapshot, wait: float, node) -> None:
        table_index = snapshot.table_index(self.tables[0])
        index = (node.modify_index if node is not None else None) or table_index
        if 0 < self.min_index and index <= self.min_index and wait > 0:
            handler = self.handler
            deadline = self.loop.time() + wait_with_jitter(wait)
            self.slot = handler._manager.run_out_at(deadline, self)
            # aiohttp closes a connection idle past its keep-alive time; a parked one is not idle
            handler._next_keepalive_close_time = max(handler._next_keepalive_close_time,
                                                     deadline + handler._keepalive_timeout)
            self.park(table_index)
            return
        self.answer(snapshot, node)

    def park(self, table_index: int) -> None:
        store = self.store
        self.handler._parked = self
        self.table_index = table_index
        store.watch(self.tables, self)
        if store.max_table_index(self.tables) > table_index:  # changed meanwhile (another thread)
            self.loop.call_soon(self.wake)

    def wake(self) -> None:
        try:
            self._wake()
        except Exception:  # noqa: BLE001 - aiohttp and the route answer it
            log.exception("fast GET %s failed on a wake; handed to aiohttp", self.path)
            self.fail()

    def fail(self) -> None:
        self.cancel()
        if self.handler._parked is self:
            self.hand_over()

    def _wake(self) -> None:
        if self.handler._parked is not self:
            return  # answered, run out or gone meanwhile
        snapshot = self.store.snapshot()
        node = snapshot.node_by_id(self.node_id)
        table_index = snapshot.table_index(self.tables[0])
        index = (node.modify_index if node is not None else None) or table_index
        if index > self.min_index:
            self.answer(snapshot, node)
        else:
            self.park(table_index)

    def run_out(self) -> None:
        """The wait ran out: answered with what there is (the index it asked with)."""
        self.slot = 0
        if self.handler._parked is self:
            self.store.unwatch(self)
            self.answer(self.store.snapshot())

    def cancel(self) -> None:
        self.handler._manager.forget_deadline(self)
        self.store.unwatch(self)

    def answer(self, snapshot, node=None) -> None:
        handler = self.handler
        if self.slot:
            handler._manager.forget_deadline(self)
        if node is None:
            node = snapshot.node_by_id(self.node_id)
            if node is None:
                return self.hand_over()
        index = node.modify_index or snapshot.table_index(self.tables[0])
        raw = handler._manager.node_answer(self.store, self.path, self.token, node, index)
        if raw is None:
            return self.hand_over()
        transport = handler.transport
        if transport is None or transport.is_closing():
            handler._parked = None
            return
        transport.write(raw)
        handler._answered()

    def hand_over(self) -> None:
        hand_over(self)


class FastGetServer(_AiohttpServer):
    """aiohttp's `Server` (the listening socket's protocol factory) making `FastGetHandler`s."""

    yurt_server = None
    fast_requests = 0  # requests taken by the fast path
    _deadlines: dict[int, set] | None = None
    _answers: tuple | None = None

    def __call__(self) -> RequestHandler:
        return FastGetHandler(self, loop=self._loop, yurt_server=self.yurt_server, **self._kwargs)

    def run_out_at(self, deadline: float, parked: _ParkedGet) -> int:
        """`parked.run_out()` at `deadline` (at most a tick later): one timer per tick for all
        the requests running out in it, not one each (thousands of watchers park per second)."""
        slot = math.ceil(deadline / DEADLINE_TICK)
        if self._deadlines is None:
            self._deadlines = {}
        bucket = self._deadlines.get(slot)
        if bucket is None:
            bucket = self._deadlines[slot] = set()
            self._loop.call_at(slot * DEADLINE_TICK, self._run_out, slot)
        bucket.add(parked)
        return slot

    def forget_deadline(self, parked: _ParkedGet) -> None:
        bucket = self._deadlines.get(parked.slot) if self._deadlines else None
        if bucket is not None:
            bucket.discard(parked)
        parked.slot = 0

    def _run_out(self, slot: int) -> None:
        for parked in self._deadlines.pop(slot, ()):
            try:
                parked.run_out()
            except Exception:  # noqa: BLE001 - aiohttp and the route answer it
                log.exception("fast GET %s failed at its deadline; handed to aiohttp", parked.path)
                parked.fail()

    def node_answer(self, store, path: str, token: str, node, index: int) -> bytes | None:
        """The whole answer (status line, headers, body) to a watcher of `path` with `token`:
        `node`'s at `index`, encoded once however many watchers it wakes or answers at once
        (a stored node is never changed in place, so the same object is the same answer),
        with the Date of this second. None when aiohttp must send it."""
        answers = self._answers
        if answers is None or answers[0] is not store:
            answers = self._answers = (store, {})
        found = answers[1].get((path, token))
        if found is None or found.node is not node or found.index != index:
            resp = json_answer(node_answer(node), index)
            head = serialize_headers(resp.headers)
            if head is None:
                return None
            if len(answers[1]) >= ANSWER_CACHE_SIZE:
                answers[1].clear()
            found = answers[1][path, token] = _Answer(node, index, head, resp.body)
        return found.now()


class _Answer:
    """One node's answer to its watchers, and its bytes as sent this second."""

    __slots__ = ("node", "index", "head", "body", "date", "raw")

    def __init__(self, node, index: int, head: bytes, body: bytes):
        self.node, self.index, self.head, self.body = node, index, head, body
        self.date = self.raw = None

    def now(self) -> bytes:
        date = rfc822_formatted_time()
        if date != self.date:
            self.date, self.raw = date, ok_bytes(self.head, self.body, date)
        return self.raw


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
