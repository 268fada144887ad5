"""The watchers' fast path (`yurt.http.fastget`) answers exactly what the route answers through
aiohttp: the same bytes at once, after a wake and at the timeout; everything it does not take
(prefixes, unknown nodes, other parameters, HTTP/1.0, pipelined requests) still works."""

import asyncio
import re

import pytest
from aiohttp import web

from yurt.http import build_app
from yurt.http.fastget import AppRunner, FastGetServer
from yurt.state.commands import NodeRegister
from yurt.structs import evolve
from yurt.testing.mock import mock_node

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


class Twin:
    """One server state behind two listeners: the fast path's runner and aiohttp's own."""

    def __init__(self, server):
        self.server = server
        self.runners: list = []
        self.ports: list[int] = []

    async def start(self):
        for cls in (AppRunner, web.AppRunner):
            runner = cls(build_app(self.server), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.ports.append(site._server.sockets[0].getsockname()[1])
            self.runners.append(runner)
        self.fast, self.plain = self.runners
        self.fast_port, self.plain_port = self.ports
        assert isinstance(self.fast.server, FastGetServer) and not isinstance(self.plain.server, FastGetServer)

    async def close(self):
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def twin(server):
    twin = Twin(server)
    await twin.start()
    yield twin
    await twin.close()


def write_node(server, node):
    server.state.apply(NodeRegister(node=node))
    return server.state.snapshot().node_by_id(node.id)


async def open_conn(port):
    return await asyncio.open_connection("127.0.0.1", port)


async def read_answer(reader, timeout=5.0) -> bytes:
    """One whole answer (Content-Length body), Date normalised."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return DATE.sub(b"\r\nDate: -\r\n", head + body)


async def exchange(port, raw: bytes, answers: int = 1) -> list[bytes]:
    reader, writer = await open_conn(port)
    writer.write(raw)
    out = [await read_answer(reader) for _ in range(answers)]
    writer.close()
    return out


def get(target: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {target} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()


async def test_a_passed_index_is_answered_at_once_with_the_routes_bytes(twin):
    node = write_node(twin.server, mock_node())
    for target in (f"/v1/node/{node.id}", f"/v1/node/{node.id}?index=1&wait=5s", f"/v1/node/{node.id}?wait=1m"):
        fast = await exchange(twin.fast_port, get(target))
        plain = await exchange(twin.plain_port, get(target))
        assert fast == plain
        assert b"200 OK" in fast[0] and f"X-Nomad-Index: {node.modify_index}".encode() in fast[0]
    assert twin.fast.server.fast_requests == 3


async def test_parked_watchers_wake_on_their_nodes_write_with_the_same_answer(twin):
    node = write_node(twin.server, mock_node())
    other = write_node(twin.server, mock_node())
    target = f"/v1/node/{node.id}?index={node.modify_index}&wait=30s"
    conns = [await open_conn(port) for port in (twin.fast_port, twin.plain_port, twin.fast_port)]
    for _, writer in conns:
        writer.write(get(target))
    await asyncio.sleep(0.1)
    write_node(twin.server, evolve(other, meta={"k": "other"}))  # another node: wakes nobody here
    await asyncio.sleep(0.1)
    for reader, _ in conns:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.05)
    changed = write_node(twin.server, evolve(node, meta={"k": "v"}))
    answers = [await read_answer(reader) for reader, _ in conns]
    assert answers[0] == answers[1] == answers[2]
    assert f"X-Nomad-Index: {changed.modify_index}".encode() in answers[0] and b'"k":"v"' in answers[0]
    # the same connections ask again (keep-alive) and are answered again
    for _, writer in conns:
        writer.write(get(f"/v1/node/{node.id}?index=1"))
    assert len({await read_answer(reader) for reader, _ in conns}) == 1
    for _, writer in conns:
        writer.close()
    assert twin.fast.server.fast_requests == 4


async def test_a_wait_runs_out_with_the_unchanged_index(twin):
    node = write_node(twin.server, mock_node())
    target = f"/v1/node/{node.id}?index={node.modify_index}&wait=200ms"
    started = asyncio.get_running_loop().time()
    fast, plain = await asyncio.gather(exchange(twin.fast_port, get(target)), exchange(twin.plain_port, get(target)))
    assert fast == plain and f"X-Nomad-Index: {node.modify_index}".encode() in fast[0]
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert twin.fast.server.fast_requests == 1


@pytest.mark.parametrize("target", ["/v1/node/{prefix}", "/v1/node/{id}?pretty=true", "/v1/node/{id}?index=x",
                                    "/v1/node/{id}?index=1&index=2", "/v1/node/{id}/allocations",
                                    "/v1/node/00000000-0000-0000-0000-000000000000", "/v1/node/{id}?region=nowhere"])
async def test_what_the_fast_path_leaves_to_aiohttp_is_answered_as_before(twin, target):
    node = write_node(twin.server, mock_node())
    target = target.format(id=node.id, prefix=node.id[:8])
    fast = await exchange(twin.fast_port, get(target))
    plain = await exchange(twin.plain_port, get(target))
    assert fast == plain
    assert twin.fast.server.fast_requests == 0


async def test_http10_close_and_head_are_left_to_aiohttp(twin):
    node = write_node(twin.server, mock_node())
    for raw in (get(f"/v1/node/{node.id}", version="1.0"), get(f"/v1/node/{node.id}", "Connection: close\r\n")):
        fast = await exchange(twin.fast_port, raw)
        plain = await exchange(twin.plain_port, raw)
        assert fast == plain
    assert twin.fast.server.fast_requests == 0


async def test_pipelined_requests_behind_a_parked_one_are_answered_in_order(twin):
    node = write_node(twin.server, mock_node())
    reader, writer = await open_conn(twin.fast_port)
    writer.write(get(f"/v1/node/{node.id}?index={node.modify_index}&wait=30s"))
    await asyncio.sleep(0.05)
    writer.write(get("/v1/status/leader") + get(f"/v1/node/{node.id}"))
    await asyncio.sleep(0.05)
    changed = write_node(twin.server, evolve(node, meta={"k": "v"}))
    first, second, third = [await read_answer(reader) for _ in range(3)]
    assert f"X-Nomad-Index: {changed.modify_index}".encode() in first and b'"k":"v"' in first
    assert second.startswith(b"HTTP/1.1 200 OK")
    assert b'"k":"v"' in third
    writer.close()


async def test_a_watched_node_deleted_meanwhile_gets_the_routes_404(twin):
    node = write_node(twin.server, mock_node())
    target = get(f"/v1/node/{node.id}?index={node.modify_index}&wait=30s")
    readers = []
    for port in (twin.fast_port, twin.plain_port):
        reader, writer = await open_conn(port)
        writer.write(target)
        readers.append((reader, writer))
    await asyncio.sleep(0.1)
    from yurt.state.commands import NodeDeregister
    twin.server.state.apply(NodeDeregister(node_ids=[node.id]))
    answers = [await read_answer(reader) for reader, _ in readers]
    assert answers[0] == answers[1] and answers[0].startswith(b"HTTP/1.1 404")
    for _, writer in readers:
        writer.close()


async def test_a_client_gone_while_parked_leaves_no_waiter(twin):
    node = write_node(twin.server, mock_node())
    reader, writer = await open_conn(twin.fast_port)
    writer.write(get(f"/v1/node/{node.id}?index={node.modify_index}&wait=30s"))
    await asyncio.sleep(0.1)
    assert twin.server.state._watchers.waiting() == 1
    writer.close()
    await asyncio.sleep(0.1)
    assert twin.server.state._watchers.waiting() == 0


async def test_requests_in_pieces_or_in_one_write_and_after_a_body_are_all_answered(twin):
    node = write_node(twin.server, mock_node())
    request = get(f"/v1/node/{node.id}")
    expected = (await exchange(twin.plain_port, request))[0]
    reader, writer = await open_conn(twin.fast_port)
    writer.write(request[:20])  # a request's first part: aiohttp's parser holds it
    await asyncio.sleep(0.05)
    writer.write(request[20:])
    assert await read_answer(reader) == expected
    writer.write(request + request)  # two in one write: aiohttp's, in order
    assert [await read_answer(reader), await read_answer(reader)] == [expected, expected]
    body = b'{"Node": null}'
    writer.write(b"PUT /v1/internal/node/register HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    assert b"400 Bad Request" in await asyncio.wait_for(reader.readuntil(b"node for client registration"), 5)
    fast_before = twin.fast.server.fast_requests
    writer.write(request)  # after a body: aiohttp's (its parser may hold what followed the body)
    assert await read_answer(reader) == expected
    assert twin.fast.server.fast_requests == fast_before
    writer.write(request)  # that ended with a whole request without a body: the fast path's again
    assert await read_answer(reader) == expected
    assert twin.fast.server.fast_requests == fast_before + 1
    writer.close()


async def test_the_token_and_unusual_headers_are_read_as_aiohttp_reads_them(twin):
    node = write_node(twin.server, mock_node())
    for extra in ("X-Nomad-Token: abc\r\n", "x-nomad-token:  abc \r\nAccept: */*\r\n", "Connection: keep-alive\r\n",
                  "Host: y\r\n", "Bad Header: x\r\n"):
        request = get(f"/v1/node/{node.id}?index=1", extra)
        fast, plain = await exchange(twin.fast_port, request), await exchange(twin.plain_port, request)
        assert fast == plain, extra


async def test_a_failure_in_the_fast_path_hands_the_request_to_aiohttp(twin, monkeypatch):
    from yurt.http import fastget

    def broken(node):
        raise RuntimeError("broken")

    monkeypatch.setattr(fastget, "node_answer", broken)
    node = write_node(twin.server, mock_node())
    at_once = get(f"/v1/node/{node.id}")
    assert await exchange(twin.fast_port, at_once) == await exchange(twin.plain_port, at_once)
    reader, writer = await open_conn(twin.fast_port)
    writer.write(get(f"/v1/node/{node.id}?index={node.modify_index}&wait=30s"))
    await asyncio.sleep(0.05)
    changed = write_node(twin.server, evolve(node, meta={"k": "v"}))
    woken = await read_answer(reader)
    assert woken.startswith(b"HTTP/1.1 200 OK") and f"X-Nomad-Index: {changed.modify_index}".encode() in woken
    writer.close()
