"""The node register's fast path (`fastget._ParkedRegister`): a `PUT /v1/internal/node/register`
with its whole body is registered below aiohttp and answered with the route's bytes; failures,
lenient bodies and anything unusual are the route's."""

import asyncio
import json
import re

from api_helpers import node_json
from test_fastget import get, open_conn, read_answer, twin  # noqa: F401 - twin: fixture

from yurt.testing.mock import mock_node

INDEX = re.compile(rb"(X-Nomad-Index: |\"Index\":)\d+")


def put(body: bytes, method: str = "PUT", extra: str = "") -> bytes:
    return (f"{method} /v1/internal/node/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def register_body(node, **changes) -> bytes:
    return json.dumps({"Node": dict(node_json(node), **changes)}).encode()


async def send(port: int, raw: bytes) -> bytes:
    reader, writer = await open_conn(port)
    writer.write(raw)
    answer = await read_answer(reader)
    writer.close()
    return answer


def without_index(answer: bytes) -> tuple:
    """The answer but for its index and (random) heartbeat TTL: head, body keys, TTL's type."""
    head, _, body = answer.partition(b"\r\n\r\n")
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: N", INDEX.sub(rb"\1N", head))
    try:
        data = json.loads(body)
    except ValueError:
        return head, body
    if isinstance(data, dict) and "HeartbeatTTL" in data:
        assert isinstance(data["HeartbeatTTL"], int) and data["HeartbeatTTL"] > 0
        assert int(re.search(rb"X-Nomad-Index: (\d+)", answer).group(1)) == data["Index"]
        data = sorted(data)
    return head, data


async def test_a_register_is_answered_with_the_routes_bytes_and_stored(twin):
    for method in ("PUT", "POST"):
        node = mock_node()
        fast = await send(twin.fast_port, put(register_body(node), method))
        index = int(re.search(rb"X-Nomad-Index: (\d+)", fast).group(1))
        assert json.loads(fast.split(b"\r\n\r\n", 1)[1])["Index"] == index
        stored = twin.server.state.snapshot().node_by_id(node.id)
        assert stored is not None and stored.modify_index == index
        plain = await send(twin.plain_port, put(register_body(node, Meta={"again": "1"}), method))
        assert without_index(fast) == without_index(plain) and plain != fast
    assert twin.fast.server.fast_requests == 2


async def test_failures_and_lenient_bodies_are_the_routes(twin):
    node = mock_node()
    await send(twin.fast_port, put(register_body(node)))
    before = twin.fast.server.fast_requests
    wrong_secret = put(register_body(node, SecretID="not-its-secret"))
    fast, plain = await send(twin.fast_port, wrong_secret), await send(twin.plain_port, wrong_secret)
    assert fast == plain and fast.startswith(b"HTTP/1.1 400") and b"secret ID does not match" in fast
    assert twin.fast.server.fast_requests == before + 1  # taken, failed, then answered by the route
    with_nulls = put(register_body(node, NodeClass=None))  # not decoded directly: the lenient path
    fast, plain = await send(twin.fast_port, with_nulls), await send(twin.plain_port, with_nulls)
    assert without_index(fast) == without_index(plain) and fast.startswith(b"HTTP/1.1 200")
    chunked = (b"PUT /v1/internal/node/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n%s\r\n0\r\n\r\n" % (len(register_body(node)), register_body(node)))
    fast, plain = await send(twin.fast_port, chunked), await send(twin.plain_port, chunked)
    assert without_index(fast) == without_index(plain)
    assert twin.fast.server.fast_requests == before + 1


async def test_requests_sent_while_a_register_is_out_are_answered_in_order(twin):
    node = mock_node()
    reader, writer = await open_conn(twin.fast_port)
    body = register_body(node)
    writer.write(put(body))
    writer.write(get("/v1/status/leader"))  # while the register waits for its batch
    first, second = await read_answer(reader), await read_answer(reader)
    assert first.startswith(b"HTTP/1.1 200") and b'"HeartbeatTTL"' in first
    assert second.startswith(b"HTTP/1.1 200") and b'"HeartbeatTTL"' not in second
    raw = put(body)
    writer.write(raw[:30])  # a register in pieces: aiohttp's
    await asyncio.sleep(0.05)
    writer.write(raw[30:])
    assert (await read_answer(reader)).startswith(b"HTTP/1.1 200")
    writer.close()
