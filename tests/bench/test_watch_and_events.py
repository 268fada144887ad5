"""W6 paths: a node read waits on its own node's key (other nodes' writes do not wake
it), identical reads at one state index share one answer, and the event stream encodes
each event once and sends one frame per index, without dropping events within its buffer."""

import asyncio
import json

from yurt.http.routes_events import encode_frames
from yurt.server.events import Event, EventBuffer
from yurt.structs import to_wire
from yurt.testing.mock import mock_node


async def _register(api, node, **meta) -> int:
    body = to_wire(node)
    body["Meta"] = meta
    resp = await api.put("/v1/internal/node/register", json={"Node": body})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["Index"]


async def test_node_read_is_woken_by_its_node_only(api):
    node_a, node_b = mock_node(), mock_node()
    await _register(api, node_a)
    index = await _register(api, node_b)
    watch_b = asyncio.create_task(api.get(f"/v1/node/{node_b.id}", params={"index": str(index), "wait": "5s"}))
    await asyncio.sleep(0.1)
    await _register(api, node_a, seq="1")  # another node's write
    await asyncio.sleep(0.2)
    assert not watch_b.done()
    later = await _register(api, node_b, seq="2")
    resp = await asyncio.wait_for(watch_b, 5)
    assert int(resp.headers["X-Nomad-Index"]) == later
    assert (await resp.json())["Meta"] == {"seq": "2"}


async def test_watchers_of_one_node_get_the_same_answer(api):
    node = mock_node()
    index = await _register(api, node)
    watches = [asyncio.create_task(api.get(f"/v1/node/{node.id}", params={"index": str(index), "wait": "5s"}))
               for _ in range(5)]
    await asyncio.sleep(0.1)
    later = await _register(api, node, seq="x")
    bodies = [await (await asyncio.wait_for(w, 5)).read() for w in watches]
    assert len(set(bodies)) == 1 and json.loads(bodies[0])["Meta"] == {"seq": "x"}
    # a plain read at the same index (no wait) is the same answer, with the index header
    resp = await api.get(f"/v1/node/{node.id}")
    assert await resp.read() == bodies[0] and int(resp.headers["X-Nomad-Index"]) == later
    assert (await (await api.get(f"/v1/node/{node.id}?pretty=true")).read()) != bodies[0]


def _event(index: int, key: str = "n") -> Event:
    return Event("Node", "NodeRegistration", key, "", index, {"Node": {"ID": key}})


def test_frames_one_per_index_with_each_event_encoded_once():
    events = [_event(5, "a"), _event(5, "b"), _event(7, "c")]
    frames = [json.loads(line) for line in encode_frames(events).splitlines()]
    assert [f["Index"] for f in frames] == [5, 7]
    assert [[e["Key"] for e in f["Events"]] for f in frames] == [["a", "b"], ["c"]]
    assert frames[1]["Events"][0] == events[2].wire()
    assert events[0].encoded() is events[0].encoded()
    assert encode_frames([]) == b""


async def test_buffer_keeps_order_and_trims_the_oldest():
    buf = EventBuffer(size=4)
    for i in range(1, 10):
        buf.publish([_event(i)])
    assert [e.index for e in buf.after(6)] == [7, 8, 9]
    assert buf.after(0)[0].index > 1 and buf.dropped > 0 and buf.missed(0)
    assert not buf.missed(9)
    waiter = asyncio.create_task(buf.wait(9, 5))
    await asyncio.sleep(0.01)
    buf.publish([_event(10), _event(11)])
    assert [e.index for e in await asyncio.wait_for(waiter, 5)] == [10, 11]
    assert await buf.wait(11, 0.01) == []


async def test_node_key_moves_only_with_its_node():
    from yurt.state import StateStore
    from yurt.state.commands import NodeRegister
    from yurt.state.txn import node_key

    store = StateStore.open(None)
    node_a, node_b = mock_node(), mock_node()
    store.apply(NodeRegister(node=node_a))
    index = store.apply(NodeRegister(node=node_b))
    waiter_b = asyncio.create_task(store.wait_for_change([node_key(node_b.id)], index, 5))
    await asyncio.sleep(0.01)
    store.apply(NodeRegister(node=node_a))
    await asyncio.sleep(0.05)
    assert not waiter_b.done() and store.snapshot().table_index(node_key(node_b.id)) == index
    later = store.apply(NodeRegister(node=node_b))
    assert await asyncio.wait_for(waiter_b, 5) == later
    store.close()
