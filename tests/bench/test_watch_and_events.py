"""W6 paths: a node read waits on its own node's key (other nodes' writes do not wake
it), identical reads at one state index share one answer, and the event stream encodes
each event once and sends one frame per index, without dropping events within its buffer."""

import asyncio
import json

import pytest

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


# --- W6's load generator (bench/scenarios/w6_watch_fanout.py, bench/simhttp.py) ---

def _bench_modules():
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from bench import simhttp
    from bench.scenarios import w6_watch_fanout

    return simhttp, w6_watch_fanout


def test_w6_wakes_are_matched_to_the_first_write_to_the_watched_node():
    _, w6 = _bench_modules()
    writes = w6.WriteLog()
    for index, node in [(12, "b"), (10, "a"), (11, "b"), (13, "a")]:
        writes.record(index, sent=index, acked=index + 0.5, node_id=node)
    assert writes.indexes == [10, 11, 12, 13] and writes.latencies == [0.5] * 4
    assert writes.first_after(10) == 11 and writes.first_after(10, "a") == 13
    assert writes.first_after(11, "b") == 12 and writes.first_after(13, "a") is None


def test_w6_steady_write_rate_is_the_answered_rate_while_sending():
    _, w6 = _bench_modules()
    keeps_up, behind = w6.WriteLog(), w6.WriteLog()
    for i in range(1000):  # 100 writes/s asked for 10 s
        sent = i / 100
        keeps_up.record(i + 1, sent=sent, acked=sent + 0.8)  # a long but steady latency
        behind.record(i + 1, sent=sent, acked=i / 60)  # answered at 60/s: the backlog grows
    assert 99 <= w6.write_rate_steady(keeps_up) <= 101
    assert 59 <= w6.write_rate_steady(behind) <= 61
    assert w6.write_rate_steady(w6.WriteLog()) is None


def test_w6_event_reader_reads_frames_split_anywhere():
    _, w6 = _bench_modules()
    tally = w6.Tally(readers=2)
    reader = w6.EventReader(1, tally)
    event = b'{"Topic":"Node","Type":"NodeRegistration","Payload":{"Node":{"Meta":{"x":"{\\"Index\\":9,"}}}}'
    stream = (b'{}\n{"Index":7,"Events":[' + event + b"," + event + b"]}\n"
              b'{"Index":8,"Events":[' + event + b"]}\n{}\n")
    for cut in (3, 40, len(stream) - 4):
        tally.event_frames.clear()
        tally.events = 0
        reader.on_data(stream[:cut])
        reader.on_data(stream[cut:])
        assert [i for i, _ in tally.event_frames] == [7, 8] and tally.events == 3, cut
        assert tally.reader_index == [0, 8] and reader.partial == b""


async def _serve_raw(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_stream_hands_over_chunks_as_they_arrive_and_returns_at_the_last():
    simhttp, _ = _bench_modules()
    release = asyncio.Event()

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Nomad-Index: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"lo\r\n3\r\n wo\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"3\r\nrld\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await _serve_raw(handler)
    got = []
    stats = simhttp.ChannelStats()
    task = asyncio.create_task(simhttp.stream("127.0.0.1", port, "GET", "/s", got.append, stats))
    for _ in range(100):
        if b"".join(got) == b"hello wo":
            break
        await asyncio.sleep(0.01)
    assert b"".join(got) == b"hello wo" and not task.done()
    release.set()
    resp = await asyncio.wait_for(task, 5)
    server.close()
    assert (resp.status, resp.index, b"".join(got)) == (200, 4, b"hello world") and stats.connects == 1


async def test_callback_channel_answers_in_order_and_reports_a_dropped_connection():
    simhttp, _ = _bench_modules()

    async def handler(reader, writer):
        for n in (1, 2):
            await reader.readuntil(b"\r\n\r\n")
            body = b'{"n":%d}' % n
            writer.write(b"HTTP/1.1 200 OK\r\nX-Nomad-Index: %d\r\nContent-Length: %d\r\n\r\n%s" % (n, len(body), body))
            await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # the third request is never answered

    server, port = await _serve_raw(handler)
    answers = []

    def on_response(resp):
        answers.append(resp)
        if len(answers) < 3 and not isinstance(resp, Exception):
            ch.send("GET", f"/next/{len(answers)}")

    ch = simhttp.CallbackChannel("127.0.0.1", port, on_response)
    await ch.connect()
    ch.send("GET", "/first")
    with pytest.raises(RuntimeError):
        ch.send("GET", "/again")  # one request at a time
    for _ in range(200):
        if len(answers) == 3:
            break
        await asyncio.sleep(0.01)
    server.close()
    assert [(r.index, r.body) for r in answers[:2]] == [(1, b'{"n":1}'), (2, b'{"n":2}')]
    assert isinstance(answers[2], simhttp.ConnectionClosed) and ch.pending_since is None
    assert ch.stats.connects == 1 and ch.stats.requests == 3


async def test_w6_watcher_is_woken_by_its_node_and_asks_again(api):
    simhttp, w6 = _bench_modules()
    node_a, node_b = mock_node(), mock_node()
    await _register(api, node_a)
    index = await _register(api, node_b)
    tally = w6.Tally(readers=1)
    watcher = w6.Watcher(api.server.host, api.server.port, node_b.id, index, tally, simhttp.ChannelStats())
    await watcher.conn.connect()
    watcher.ask()
    await asyncio.sleep(0.1)
    await _register(api, node_a, seq="1")
    await asyncio.sleep(0.2)
    assert tally.wakes == 0 and watcher.conn.pending_since is not None
    later = await _register(api, node_b, seq="2")
    for _ in range(200):
        if tally.wakes:
            break
        await asyncio.sleep(0.01)
    assert tally.wakes == 1 and tally.wake_events[0][:2] == (node_b.id, index) and tally.timeouts == 0
    assert watcher.index == later and watcher.conn.pending_since is not None  # parked again at `later`
    assert watcher.conn.stats.requests == 2 and watcher.done(later) and not watcher.done(later + 1)
    tally.stopped = True
    watcher.conn.close()


def test_a_node_event_encodes_as_the_nodes_wire_form_without_its_secret():
    from yurt.server.events import _node_event
    from yurt.state import StateStore
    from yurt.state.commands import NodeRegister
    from yurt.structs import to_wire
    from yurt.testing.mock import mock_node

    store = StateStore()
    node = mock_node()
    index = store.apply(NodeRegister(node=node))
    [event] = _node_event(store.snapshot(), index, node.id, "NodeRegistration")
    expected = to_wire(store.snapshot().node_by_id(node.id))
    expected["SecretID"] = ""
    assert node.secret_id and json.loads(event.encoded())["Payload"] == {"Node": expected}
    assert event.wire()["Payload"] == {"Node": expected}
