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
        self.buf.clear()
        self._head, self._need, self._chunked, self.got_bytes = None, -1, False, False
        self.waiter = loop.create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buf += data
        if self.waiter is None:
            return
        if self._head is None and not self._parse_head():
            return
        if self._chunked:
            body = self._dechunk()
            if body is None:
                return
        else:
            if len(self.buf) < self._need:
                return
            body = bytes(self.buf[: self._need])
        status, index, close = self._head
        waiter, self.waiter = self.waiter, None
        if close:
            self.transport.close()
            self.closed = True
        if not waiter.done():
            waiter.set_result(Response(status, index, body))

    def _parse_head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self.buf[:end]).split(b"\r\n")
        del self.buf[: end + 4]
        status = int(lines[0][9:12])
        index, length, close = 0, 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"x-nomad-index":
                index = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        self._head, self._need = (status, index, close), length
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
            if body is None:
                data = b"%s %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (method.encode(), path.encode(), self.host.encode(),
                                                                self.port)
            else:
                data = b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                    method.encode(), path.encode(), self.host.encode(), self.port, len(body), body)
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
