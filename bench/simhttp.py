"""A small HTTP/1.1 keep-alive client for the simulated fleet.

Each `Channel` is one persistent TCP connection used for one request at a time, the way a
client agent keeps its connections to the server open. It sends exactly the requests an
HTTP client library would (method, path, Host, Content-Type, Content-Length, JSON body)
and reads `Content-Length` or chunked responses. What it leaves out is the per-request
machinery of a general client (cookie jar, redirects, per-request objects and timers
beyond one deadline), which made aiohttp's client the fleet's largest CPU cost, and the
connection pool, whose idle connections expired and were reopened in bursts of hundreds
(listen-queue overflows, then SYN retransmits of 1-7 s that delayed heartbeats past the
node's TTL).

A request on a connection the server closed while idle (its keep-alive timeout) is sent
again once on a new connection, as Go's and aiohttp's clients do: the server never read it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

READ_TIMEOUT = 120.0  # seconds without a full response (blocking queries wait up to ~32 s)


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the whole response arrived."""


@dataclass
class ChannelStats:
    """Shared by all channels of a fleet."""

    connects: int = 0
    requests: int = 0
    resends: int = 0  # requests sent again after the server closed an idle connection


@dataclass
class Response:
    status: int
    index: int  # X-Nomad-Index, 0 when absent
    body: bytes

    def ok(self) -> bool:
        return 200 <= self.status < 300


def _header(head: bytes, key: bytes) -> bytes | None:
    """The value of the header line `key` (`\\r\\nname:`) in a lower-cased head ending with
    `\\r\\n`, stripped; None when there is none."""
    at = head.find(key)
    if at < 0:
        return None
    start = at + len(key)
    return head[start : head.index(b"\r\n", start)].strip()


class _Protocol(asyncio.Protocol):
    __slots__ = ("_chunked", "_head", "_need", "buf", "closed", "got_bytes", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.got_bytes = False
        self._head: tuple[int, int, bool] | None = None  # status, index, close after
        self._need = -1  # body length (Content-Length); -1 unknown yet
        self._chunked = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionClosed(str(exc) if exc else "connection closed by the server"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        self._reset()
        self.waiter = loop.create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buf += data
        if self.waiter is None:
            return
        resp = self._response()
        if resp is None:
            return
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(resp)

    def _reset(self) -> None:
        self.buf.clear()
        self._head, self._need, self._chunked, self.got_bytes = None, -1, False, False

    def _response(self, with_body: bool = True) -> Response | None:
        """The response once all of it is in (closing the connection when the server said so);
        its body empty unless `with_body`."""
        if self._head is None and not self._parse_head():
            return None
        if self._chunked:
            body = self._dechunk()
            if body is None:
                return None
        else:
            if len(self.buf) < self._need:
                return None
            body = bytes(self.buf[: self._need]) if with_body else b""
        status, index, close = self._head
        if close:
            self.transport.close()
            self.closed = True
        return Response(status, index, body)

    def _parse_head(self) -> bool:
        """Status, X-Nomad-Index, Content-Length, chunked and `Connection: close` from the head
        (names in any case): found in the lower-cased head with a few `find`s, not line by line
        (a watcher reads thousands of heads a second)."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[: end + 2]).lower()
        del self.buf[: end + 4]
        length = _header(head, b"\r\ncontent-length:")
        index = _header(head, b"\r\nx-nomad-index:")
        encoding = _header(head, b"\r\ntransfer-encoding:")
        self._chunked = encoding is not None and b"chunked" in encoding
        close = _header(head, b"\r\nconnection:") == b"close"
        self._head, self._need = (int(head[9:12]), int(index or 0), close), int(length or 0)
        return True

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once its last chunk is in, else None."""
        out, pos, buf = bytearray(), 0, self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            start = eol + 2
            if size == 0:
                return bytes(out) if buf.find(b"\r\n", start) >= 0 else None
            if len(buf) < start + size + 2:
                return None
            out += buf[start : start + size]
            pos = start + size + 2


def request_bytes(method: str, path: str, host: str, port: int, body: bytes | None = None) -> bytes:
    """The request as an HTTP client library sends it (a JSON body when there is one)."""
    if body is None:
        return b"%s %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (method.encode(), path.encode(), host.encode(), port)
    return b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        method.encode(), path.encode(), host.encode(), port, len(body), body)


@dataclass
class Channel:
    """One keep-alive connection to `host:port`, one request at a time (others wait)."""

    host: str
    port: int
    stats: ChannelStats = field(default_factory=ChannelStats)
    timeout: float = READ_TIMEOUT
    _proto: _Protocol | None = None
    _lock: asyncio.Lock | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            data = request_bytes(method, path, self.host, self.port, body)
            self.stats.requests += 1
            loop = asyncio.get_running_loop()
            for attempt in (0, 1):
                proto = self._proto
                reused = proto is not None and not proto.closed
                if not reused:
                    proto = await self._connect(loop)
                waiter = proto.send(data, loop)
                timer = loop.call_later(self.timeout, self._expire, proto, waiter)
                try:
                    return await waiter
                except asyncio.CancelledError:
                    self.close()  # its response may still come: the connection cannot be reused
                    raise
                except ConnectionClosed:
                    if attempt == 0 and reused and not proto.got_bytes:
                        self.stats.resends += 1
                        continue
                    raise
                finally:
                    timer.cancel()
            raise AssertionError("unreachable")

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        self.stats.connects += 1
        _, proto = await loop.create_connection(_Protocol, self.host, self.port)
        self._proto = proto
        return proto

    @staticmethod
    def _expire(proto: _Protocol, waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())
            proto.waiter = None
            if proto.transport is not None:
                proto.transport.close()
            proto.closed = True

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


class _CallbackProtocol(_Protocol):
    __slots__ = ("on_response", "pending", "with_body")

    def __init__(self, on_response, with_body: bool = True) -> None:
        super().__init__()
        self.on_response, self.with_body = on_response, with_body
        self.pending = False

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.pending:
            self.pending = False
            self.on_response(ConnectionClosed(str(exc) if exc else "connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.pending:
            return
        resp = self._response(self.with_body)
        if resp is not None:
            self.pending = False
            self.on_response(resp)


class CallbackChannel:
    """One keep-alive connection whose responses go to `on_response(Response | ConnectionClosed)`,
    called from the protocol as soon as the whole response is in: no task, future or timer per
    request. For many long-lived request loops (blocking-query watchers) where `Channel`'s
    per-request machinery would be most of the client's cost; the callback sends the next
    request itself. One request at a time. No deadline and no re-send: the caller can sweep
    `pending_since` (`time.monotonic()` of the unanswered request, else None) and `connect` again."""

    __slots__ = ("_proto", "host", "on_response", "pending_since", "port", "stats", "with_body")

    def __init__(self, host: str, port: int, on_response, stats: ChannelStats | None = None,
                 with_body: bool = True) -> None:
        self.host, self.port, self.on_response, self.with_body = host, port, on_response, with_body
        self.stats = stats if stats is not None else ChannelStats()
        self.pending_since: float | None = None
        self._proto: _CallbackProtocol | None = None

    def _answer(self, resp) -> None:
        self.pending_since = None
        self.on_response(resp)

    async def connect(self) -> None:
        self.close()
        self.stats.connects += 1
        _, self._proto = await asyncio.get_running_loop().create_connection(
            lambda: _CallbackProtocol(self._answer, self.with_body), self.host, self.port)

    @property
    def connected(self) -> bool:
        return self._proto is not None and not self._proto.closed

    def send(self, method: str, path: str, body: bytes | None = None) -> None:
        self.send_bytes(request_bytes(method, path, self.host, self.port, body))

    def send_bytes(self, request: bytes) -> None:
        """`send` of a request already in bytes (`request_bytes`)."""
        proto = self._proto
        if proto is None or proto.closed:
            raise ConnectionClosed("not connected")
        if proto.pending:
            raise RuntimeError("a request is already waiting for its response on this connection")
        self.stats.requests += 1
        proto._reset()
        proto.pending = True
        self.pending_since = time.monotonic()
        proto.transport.write(request)

    def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None:
            proto.pending = False  # closing it ourselves is not the server's doing
            if proto.transport is not None:
                proto.transport.close()
        self.pending_since = None


class _StreamProtocol(_Protocol):
    """An endless body handed to `on_data` as it arrives. A chunked body's data goes out piece
    by piece, within or across chunks, without gathering whole chunks first: each piece is
    the received bytes themselves (or a slice of them), so an event stream of 100 KB batches
    is not copied through a buffer several times."""

    __slots__ = ("_ending", "_gap", "_left", "_line", "on_data")

    def __init__(self, on_data) -> None:
        super().__init__()
        self.on_data = on_data
        self._left = 0  # bytes of the current chunk still to come
        self._gap = 0  # bytes of the CRLF after a chunk's data still to skip
        self._line = b""  # a chunk-size line received in part
        self._ending = False  # the last chunk came: its trailer's end is all that is left

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self._head is None:
            self.buf += data
            if self.waiter is None or not self._parse_head():
                return
            data = bytes(self.buf)
            self.buf.clear()
        if self._chunked:
            ended = self._feed_chunks(data)
        else:
            piece = data[: self._need]
            self._need -= len(piece)
            ended = self._need == 0
            if piece:
                self.on_data(piece)
        if ended:
            status, index, _ = self._head
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(Response(status, index, b""))

    def _feed_chunks(self, data: bytes) -> bool:
        """Hands the chunks' data in `data` to `on_data`; whether the body ended."""
        pos, size = 0, len(data)
        while pos < size:
            if self._left:
                take = min(self._left, size - pos)
                self.on_data(data if take == size else data[pos : pos + take])
                self._left -= take
                pos += take
                if not self._left:
                    self._gap = 2
                continue
            if self._gap:
                skip = min(self._gap, size - pos)
                self._gap -= skip
                pos += skip
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self._line += data[pos:]
                return False
            line, self._line = self._line + data[pos:eol], b""
            pos = eol + 1
            if self._ending:
                if not line.rstrip(b"\r"):
                    return True  # the empty line that ends the trailer
                continue
            chunk = int(line.rstrip(b"\r").split(b";")[0], 16)
            if chunk == 0:
                self._ending = True
            self._left = chunk
        return False


async def stream(host: str, port: int, method: str, path: str, on_data, stats: ChannelStats | None = None) -> Response:
    """Sends one request on a connection of its own and hands the body to `on_data(bytes)` as it
    arrives (each batch of whole chunks of a chunked body), for endless answers such as
    `/v1/event/stream`. Returns the status and X-Nomad-Index (empty body) when the body ends;
    no deadline. The connection is closed afterwards, also when the caller is cancelled."""
    stats = stats if stats is not None else ChannelStats()
    loop = asyncio.get_running_loop()
    stats.connects += 1
    stats.requests += 1
    transport, proto = await loop.create_connection(lambda: _StreamProtocol(on_data), host, port)
    try:
        return await proto.send(request_bytes(method, path, host, port), loop)
    finally:
        transport.close()
