"""A watcher's next request on its connection is read from the last one's template (`fastget._Template`:
the same bytes around other index digits) and its answer comes from the per-node answer cache
(`FastGetServer.node_answer`): the bytes must stay the route's whatever changes between two requests."""

import asyncio

import pytest
from test_fastget import exchange, get, open_conn, read_answer, twin, write_node  # noqa: F401 - twin: fixture

from yurt.http.fastget import _Template
from yurt.structs import evolve
from yurt.testing.mock import mock_node


async def ask(reader, writer, raw: bytes) -> bytes:
    writer.write(raw)
    return await read_answer(reader)


async def test_one_connection_asking_with_ever_new_indexes_gets_the_routes_answers(twin):
    node = write_node(twin.server, mock_node())
    reader, writer = await open_conn(twin.fast_port)
    preader, pwriter = await open_conn(twin.plain_port)
    for round_ in range(3):
        target = f"/v1/node/{node.id}?index={node.modify_index}&wait=30s"
        asked = [writer, pwriter]
        for w in asked:
            w.write(get(target, "X-Nomad-Token: t1\r\n"))
        await asyncio.sleep(0.05)
        node = write_node(twin.server, evolve(node, meta={"round": str(round_)}))
        fast, plain = await read_answer(reader), await read_answer(preader)
        assert fast == plain and f'"round":"{round_}"'.encode() in fast
        assert f"X-Nomad-Index: {node.modify_index}".encode() in fast
    # a passed index (fewer digits, leading zeros) is answered at once, from the template too
    for index in ("1", "0001", str(node.modify_index - 1)):
        raw = get(f"/v1/node/{node.id}?index={index}&wait=30s", "X-Nomad-Token: t1\r\n")
        assert await ask(reader, writer, raw) == await ask(preader, pwriter, raw)
    assert twin.fast.server.fast_requests == 6
    writer.close()
    pwriter.close()


@pytest.mark.parametrize("change", ["node", "token", "wait", "parameter", "index", "version"])
async def test_a_request_that_differs_from_the_template_elsewhere_is_read_again(twin, change):
    for _ in range(3):  # the nodes' indexes are past 1 and 2: the requests below are answered at once
        write_node(twin.server, mock_node())
    node, other = write_node(twin.server, mock_node()), write_node(twin.server, mock_node())
    reader, writer = await open_conn(twin.fast_port)
    first = get(f"/v1/node/{node.id}?index=1&wait=30s", "X-Nomad-Token: t1\r\n")
    await ask(reader, writer, first)
    target, extra, version = f"/v1/node/{node.id}?index=2&wait=30s", "X-Nomad-Token: t1\r\n", "1.1"
    if change == "node":
        target = f"/v1/node/{other.id}?index=2&wait=30s"
    elif change == "token":
        extra = "X-Nomad-Token: t2\r\n"
    elif change == "wait":
        target = f"/v1/node/{node.id}?index={node.modify_index}&wait=50ms"
    elif change == "parameter":
        target = f"/v1/node/{node.id}?index=2&wait=30s&pretty=true"
    elif change == "index":
        target = f"/v1/node/{node.id}?index=+2&wait=30s"
    else:
        version = "1.0"
    raw = get(target, extra, version)
    assert await ask(reader, writer, raw) == (await exchange(twin.plain_port, raw))[0]
    writer.close()


def test_the_template_takes_only_digits_where_the_index_was():
    raw = b"GET /v1/node/n?index=42&wait=5s HTTP/1.1\r\nHost: x\r\n\r\n"
    start = raw.index(b"42")
    template = _Template.of(raw, (start, start + 2), "/v1/node/n", "n", "", 5.0)
    assert template.index_in(raw) == 42
    assert template.index_in(raw.replace(b"=42&", b"=7&")) == 7
    assert template.index_in(raw.replace(b"=42&", b"=123456789&")) == 123456789
    for other in (b"=&", b"=4x&", b"=-4&", b"=+4&", b"= 4&", b"=1" + b"0" * 18 + b"&"):
        assert template.index_in(raw.replace(b"=42&", other)) is None, other
    assert template.index_in(raw.replace(b"Host: x", b"Host: y")) is None
    assert template.index_in(raw + raw) is None
    assert _Template.of(raw, None, "/v1/node/n", "n", "", 5.0) is None


async def test_a_node_written_between_two_answers_is_encoded_again(twin):
    node = write_node(twin.server, mock_node())
    reader, writer = await open_conn(twin.fast_port)
    before = await ask(reader, writer, get(f"/v1/node/{node.id}?index=1"))
    again = await ask(reader, writer, get(f"/v1/node/{node.id}?index=1"))
    assert before == again
    changed = write_node(twin.server, evolve(node, meta={"k": "changed"}))
    after = await ask(reader, writer, get(f"/v1/node/{node.id}?index=1"))
    assert after != before and b'"k":"changed"' in after
    assert f"X-Nomad-Index: {changed.modify_index}".encode() in after
    assert after == (await exchange(twin.plain_port, get(f"/v1/node/{node.id}?index=1")))[0]
    writer.close()
