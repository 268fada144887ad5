"""The fleet's keep-alive HTTP channel (bench/simhttp.py) against a small raw server:
Content-Length and chunked bodies, X-Nomad-Index, one connection for many requests, a
request re-sent once when the server closed the idle connection, and a read deadline."""

import asyncio
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.simhttp import Channel, ChannelStats, ConnectionClosed


class RawServer:
    """Answers each request with `reply(method, path, body)` -> raw response bytes; None
    closes the connection without answering. Records every request it read."""

    def __init__(self, reply):
        self.reply = reply
        self.requests: list[tuple[str, str, bytes]] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ")
                length = next((int(line.split(":")[1]) for line in lines[1:] if line.lower().startswith("content-length")), 0)
                body = await reader.readexactly(length) if length else b""
                self.requests.append((method, path, body))
                out = self.reply(method, path, body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        for w in self.writers:
            w.close()
        self.server.close()
        await self.server.wait_closed()


def json_reply(body: bytes, index: int = 7, status: str = "200 OK") -> bytes:
    return (b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nX-Nomad-Index: %d\r\nContent-Length: %d\r\n\r\n%s"
            % (status.encode(), index, len(body), body))


async def test_requests_share_one_connection_and_read_index_and_body():
    async with RawServer(lambda m, p, b: json_reply(b'{"echo":%d}' % len(b), index=len(p))) as srv:
        stats = ChannelStats()
        ch = Channel("127.0.0.1", srv.port, stats)
        r1 = await ch.request("PUT", "/v1/internal/allocs/update", b'{"Allocs":[1]}')
        r2 = await ch.request("GET", "/v1/internal/node/x/allocs?index=3&wait=30s")
        ch.close()
    assert (r1.status, r1.index, r1.body) == (200, len("/v1/internal/allocs/update"), b'{"echo":14}')
    assert (r2.status, r2.index, r2.body) == (200, len("/v1/internal/node/x/allocs?index=3&wait=30s"), b'{"echo":0}')
    assert srv.requests[0] == ("PUT", "/v1/internal/allocs/update", b'{"Allocs":[1]}')
    assert srv.requests[1][:2] == ("GET", "/v1/internal/node/x/allocs?index=3&wait=30s")
    assert srv.connections == 1 and stats.connects == 1 and stats.requests == 2


async def test_chunked_body_and_error_status():
    chunked = (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\nnode\r\n a\r\n not found\r\n0\r\n\r\n")
    async with RawServer(lambda m, p, b: chunked) as srv:
        ch = Channel("127.0.0.1", srv.port)
        resp = await ch.request("PUT", "/v1/internal/node/x/heartbeat", b"{}")
        ch.close()
    assert resp.status == 404 and not resp.ok() and resp.body == b"node not found"


async def test_a_request_on_a_connection_closed_while_idle_is_sent_again_once():
    async with RawServer(lambda m, p, b: json_reply(b"{}")) as srv:
        stats = ChannelStats()
        ch = Channel("127.0.0.1", srv.port, stats)
        await ch.request("GET", "/a")
        for w in srv.writers:  # the server's keep-alive timeout
            w.close()
        await asyncio.sleep(0.05)
        resp = await ch.request("GET", "/b")
        ch.close()
    assert resp.status == 200 and srv.connections == 2 and stats.resends in (0, 1)
    assert [p for _, p, _ in srv.requests] == ["/a", "/b"]


async def test_a_server_that_drops_a_fresh_connection_is_an_error_not_a_loop():
    async with RawServer(lambda m, p, b: None) as srv:
        ch = Channel("127.0.0.1", srv.port)
        with pytest.raises(ConnectionClosed):
            await ch.request("GET", "/a")
        ch.close()
    assert srv.connections == 1


async def test_read_deadline():
    async def never(reader, writer):
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    try:
        ch = Channel("127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.2)
        with pytest.raises(TimeoutError):
            await ch.request("GET", "/slow")
        ch.close()
    finally:
        server.close()
