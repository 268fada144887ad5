"""The wake path's shortcuts send exactly what aiohttp's general path sends: `FastResponse`
(one write of status line, headers and body), blocking-query answers shared with their
headers, event-stream frames shared by subscribers with the same filter; request bodies
convert as before (nulls dropped so defaults apply)."""

import asyncio
import json
import re

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from api_helpers import node_json, register_node
from test_event_stream import read_frame
from yurt.http import wire
from yurt.http.wire import FastResponse, convert, read_json
from yurt.testing.mock import mock_node

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send one raw request; return everything the server sent until it went quiet or closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    out = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 0.3):
            out += chunk
    except asyncio.TimeoutError:
        pass
    writer.close()
    return DATE.sub(b"\r\nDate: -\r\n", out)


@pytest.fixture
async def twin_routes():
    """The same answer through FastResponse and through aiohttp's own Response."""
    body = json.dumps({"ID": "n1", "Meta": {"k": "v" * 5000}}).encode()

    def headers():
        return {"Content-Type": "application/json", "X-Nomad-Index": "7", "X-Nomad-KnownLeader": "true"}

    async def fast(request):
        return FastResponse(body=body, headers=headers())

    async def plain(request):
        return web.Response(body=body, headers=headers())

    app = web.Application()
    app.router.add_get("/fast", fast)
    app.router.add_get("/plain", plain)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.mark.parametrize("request_head", [
    b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n",  # the one-write path
    b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # aiohttp's path: Connection: close
    b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n",
    b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n",
])
async def test_fast_response_sends_what_aiohttp_sends(twin_routes, request_head):
    fast = await raw_exchange(twin_routes.port, request_head.replace(b"%s", b"/fast"))
    plain = await raw_exchange(twin_routes.port, request_head.replace(b"%s", b"/plain"))
    assert fast.startswith(b"HTTP/1.") and b"X-Nomad-Index: 7" in fast
    assert fast == plain


def test_headers_aiohttp_adds_itself_leave_the_answer_to_aiohttp():
    assert wire.serialize_headers({"Content-Type": "application/json", "X-A": "1"}) == \
        b"Content-Type: application/json\r\nX-A: 1\r\n"
    assert wire.serialize_headers({"Content-Length": "3"}) is None
    assert wire.serialize_headers({"X-A": "1\r\nX-Injected: 1"}) is None


async def test_watchers_woken_together_get_the_same_answer_as_a_fresh_read(api, server):
    node = await register_node(api)
    first = await api.get(f"/v1/node/{node.id}")
    index = int(first.headers["X-Nomad-Index"])
    watchers = [asyncio.create_task(api.get(f"/v1/node/{node.id}", params={"index": str(index), "wait": "5s"}))
                for _ in range(5)]
    await asyncio.sleep(0.1)
    assert not any(w.done() for w in watchers)
    again = node_json(node)
    again["Meta"] = {"changed": "yes"}
    assert (await api.put("/v1/internal/node/register", json={"Node": again})).status == 200
    answers = await asyncio.gather(*watchers)
    bodies = [await a.read() for a in answers]
    new_index = answers[0].headers["X-Nomad-Index"]
    assert int(new_index) > index and all(a.headers["X-Nomad-Index"] == new_index for a in answers)
    assert all(a.headers["Content-Type"] == "application/json" for a in answers)
    assert len(set(bodies)) == 1 and json.loads(bodies[0])["Meta"] == {"changed": "yes"}
    fresh = await api.get(f"/v1/node/{node.id}")
    assert fresh.headers["X-Nomad-Index"] == new_index and await fresh.read() == bodies[0]


async def test_subscribers_share_frames_only_with_the_same_filter(api, server):
    a = await api.get("/v1/event/stream?topic=Node")
    b = await api.get("/v1/event/stream?topic=Node")
    jobs_only = await api.get("/v1/event/stream?topic=Job")
    for _ in range(100):
        if server.events.subscribers >= 3:
            break
        await asyncio.sleep(0.01)
    node = await register_node(api)
    frame_a, frame_b = await read_frame(a), await read_frame(b)
    assert frame_a == frame_b and frame_a["Events"][0]["Key"] == node.id
    with pytest.raises(asyncio.TimeoutError):
        await read_frame(jobs_only, timeout=0.3)
    for resp in (a, b, jobs_only):
        resp.close()


class _Body:
    """What read_json needs of a request."""

    def __init__(self, raw: bytes):
        self.raw = raw

    async def read(self) -> bytes:
        return self.raw


class Thing(msgspec.Struct, rename="pascal"):
    name: str = ""
    count: int | None = 3
    tags: list[str] = []


async def _read_and_convert(raw: bytes):
    body = await read_json(_Body(raw))
    return convert(body["Thing"], Thing), convert(body["Many"], list[Thing])


@pytest.mark.parametrize("raw, expected", [
    (b'{"Thing": {"Name": "a", "Count": 5}, "Many": [{"Name": "b"}]}',
     (Thing("a", 5), [Thing("b")])),
    # null members fall back to the struct's defaults; null list items are dropped
    (b'{"Thing": {"Name": "a", "Count": null, "Tags": ["x", null]}, "Many": [null, {"Name": null}]}',
     (Thing("a", 3, ["x"]), [Thing()])),
])
async def test_bodies_convert_the_same_with_or_without_nulls(raw, expected):
    assert await _read_and_convert(raw) == expected


def test_drop_nulls_walks_dict_and_list_subclasses_too():
    from collections import OrderedDict

    data = OrderedDict(a=None, b=[None, OrderedDict(c=None, d=1)], e=(None,))
    assert wire.drop_nulls(data) == {"b": [{"d": 1}], "e": (None,)}


async def test_node_registration_with_null_members_still_applies_defaults(api, server):
    node = mock_node()
    data = node_json(node)
    data["NodeClass"] = None
    assert (await api.put("/v1/internal/node/register", json={"Node": data})).status == 200
    got = await (await api.get(f"/v1/node/{node.id}")).json()
    assert got["ID"] == node.id and got["NodeClass"] == ""
