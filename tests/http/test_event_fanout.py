"""The event stream's fan-out (`routes_events.StreamFanout`): one pass writes every subscriber
the frames after its own index, shared by subscribers with the same index and filter; a slow
reader catches up in one write; `{}` heartbeats; gone clients leave; HTTP/1.0 gets bare lines."""

import asyncio
import json

from api_helpers import register_node
from test_event_stream import wait_for_subscriber

from yurt.http import routes_events
from yurt.http.routes_events import StreamFanout, _Subscriber, parse_topics
from yurt.server.events import Event, EventBuffer


class FakeTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


class FakeProtocol:
    def __init__(self, transport):
        self.transport, self.writing_paused = transport, False


def subscriber(topics=("Node",), last=0, chunked=True) -> _Subscriber:
    transport = FakeTransport()
    now = asyncio.get_running_loop().time()
    return _Subscriber(transport, FakeProtocol(transport), parse_topics(list(topics)), "default", chunked, last, now)


def node_event(index: int, key: str = "n1") -> Event:
    return Event("Node", "NodeRegistration", key, "", index, {"Node": {"ID": key}})


def lines(data: bytes, chunked: bool = True) -> list[dict]:
    if chunked:
        size, _, rest = data.partition(b"\r\n")
        assert rest.endswith(b"\r\n") and len(rest) == int(size, 16) + 2
        data = rest[:-2]
    return [json.loads(line) for line in data.splitlines()]


async def settle(fanout: StreamFanout) -> None:
    """Until the pending pass (if any) has run."""
    for _ in range(100):
        if fanout._flush is None:
            return
        await asyncio.sleep(routes_events.MIN_SEND_INTERVAL / 2)
    raise AssertionError("the fan-out did not run")


async def test_one_pass_writes_each_subscriber_its_frames_once_encoded():
    buffer = EventBuffer()
    fanout = StreamFanout(buffer, asyncio.get_running_loop())
    nodes, also_nodes, jobs = subscriber(), subscriber(), subscriber(topics=("Job",))
    for sub in (nodes, also_nodes, jobs):
        fanout.add(sub)
    assert buffer.subscribers == 3
    for index in (5, 6, 7):  # one burst: one write each, a frame per index
        buffer.publish([node_event(index, f"n{index}")])
    await settle(fanout)
    assert len(nodes.transport.writes) == 1 and nodes.transport.writes[0] is also_nodes.transport.writes[0]
    frames = lines(nodes.transport.writes[0])
    assert [f["Index"] for f in frames] == [5, 6, 7] and frames[2]["Events"][0]["Key"] == "n7"
    assert jobs.transport.writes == [] and jobs.last == 7  # nothing of its topic, but it is past them
    buffer.publish([node_event(8)])
    await settle(fanout)
    assert [f["Index"] for f in lines(nodes.transport.writes[1])] == [8]


async def test_a_subscriber_from_an_older_index_gets_the_backlog_and_http10_bare_lines():
    buffer = EventBuffer()
    for index in (3, 4):
        buffer.publish([node_event(index)])
    fanout = StreamFanout(buffer, asyncio.get_running_loop())
    old, bare = subscriber(last=3), subscriber(last=2, chunked=False)
    fanout.add(old)
    fanout.add(bare)
    await settle(fanout)
    assert [f["Index"] for f in lines(old.transport.writes[0])] == [4]
    assert [f["Index"] for f in lines(bare.transport.writes[0], chunked=False)] == [3, 4]


async def test_a_slow_reader_is_skipped_then_catches_up_in_one_write():
    buffer = EventBuffer()
    fanout = StreamFanout(buffer, asyncio.get_running_loop())
    slow, fast = subscriber(), subscriber()
    fanout.add(slow)
    fanout.add(fast)
    slow.protocol.writing_paused = True
    buffer.publish([node_event(1)])
    await asyncio.sleep(routes_events.MIN_SEND_INTERVAL * 2)
    buffer.publish([node_event(2)])
    await asyncio.sleep(routes_events.MIN_SEND_INTERVAL * 3)
    assert slow.transport.writes == [] and len(fast.transport.writes) == 2
    assert fanout._flush is not None  # a pass is due again for the one left behind
    slow.protocol.writing_paused = False  # drained: the retry pass sends it everything since
    await asyncio.sleep(routes_events.MIN_SEND_INTERVAL * 2)
    await settle(fanout)
    assert len(slow.transport.writes) == 1 and [f["Index"] for f in lines(slow.transport.writes[0])] == [1, 2]


async def test_heartbeats_and_gone_clients(monkeypatch):
    monkeypatch.setattr(routes_events, "HEARTBEAT_SECONDS", 0.1)
    buffer = EventBuffer()
    loop = asyncio.get_running_loop()
    fanout = StreamFanout(buffer, loop)
    idle, gone = subscriber(), subscriber()
    fanout.add(idle)
    fanout.add(gone)
    gone.transport.closing = True
    await asyncio.wait_for(gone.done, 5)  # the heartbeat pass finds it gone: its handler ends
    assert buffer.subscribers == 1 and fanout.subscribers == [idle]
    assert idle.transport.writes[:1] == [b"3\r\n{}\n\r\n"]
    assert gone.transport.writes == []


async def test_http_subscribers_read_frames_and_leave(api, server):
    resp = await api.get("/v1/event/stream?topic=Node")
    await wait_for_subscriber(server)
    node = await register_node(api)
    line = await asyncio.wait_for(resp.content.readline(), 5)
    assert json.loads(line)["Events"][0]["Key"] == node.id
    resp.close()
    for _ in range(100):  # the next pass finds its socket closed
        await register_node(api)
        if not server.events.subscribers:
            break
        await asyncio.sleep(0.05)
    assert server.events.subscribers == 0 and server.events.fanout.subscribers == []
