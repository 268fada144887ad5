"""`/v1/event/stream`: newline-delimited JSON frames `{"Index", "Events"}`, `{}` as a
heartbeat every 30 s. `?topic=Job:web&topic=Allocation:*`, `?index=`, `?namespace=`."""

import asyncio

from aiohttp import web

from yurt.server.endpoints import EndpointError

from .context import server_of

HEARTBEAT_SECONDS = 30.0
# A subscriber sends at most one write per this many seconds: while events land faster, the
# next write gathers everything published meanwhile (under 500 writes/s, 100 readers cost 2,000
# socket writes/s instead of 50,000). An idle stream still sends a new event at once.
MIN_SEND_INTERVAL = 0.05


def parse_topics(values: list[str]) -> dict[str, set[str]]:
    topics: dict[str, set[str]] = {}
    for value in values or ["*:*"]:
        topic, sep, key = value.partition(":")
        if not topic:
            raise EndpointError(400, f"Invalid topic format {value!r}")
        topics.setdefault(topic, set()).add(key if sep else "*")
    return topics


def event_matches(event, topics: dict[str, set[str]], namespace: str) -> bool:
    if namespace != "*" and event.namespace not in ("", namespace):
        return False
    for topic in (event.topic, "*"):
        keys = topics.get(topic)
        if keys and ("*" in keys or event.key in keys or any(k in keys for k in event.filter_keys or ())):
            return True
    return False


def encode_frames(events) -> bytes:
    """One `{"Index", "Events"}` line per index, as Nomad sends them; each event is encoded
    once for all subscribers (`Event.encoded`) and spliced into the frames."""
    lines: list[bytes] = []
    index, batch = None, []
    for event in events:
        if event.index != index and batch:
            lines.append(b'{"Index":%d,"Events":[%s]}\n' % (index, b",".join(batch)))
            batch = []
        index = event.index
        batch.append(event.encoded())
    if batch:
        lines.append(b'{"Index":%d,"Events":[%s]}\n' % (index, b",".join(batch)))
    return b"".join(lines)


class _Subscriber:
    """One `/v1/event/stream` response: where it is in the buffer, what it wants, its socket."""

    __slots__ = ("transport", "protocol", "topics", "namespace", "selector", "chunked", "last", "sent_at", "done")

    def __init__(self, transport, protocol, topics, namespace: str, chunked: bool, last: int, now: float):
        self.transport, self.protocol = transport, protocol
        self.topics, self.namespace = topics, namespace
        self.selector = (frozenset((t, frozenset(k)) for t, k in topics.items()), namespace)
        self.chunked = chunked  # HTTP/1.1: chunks; HTTP/1.0: the bare lines
        self.last, self.sent_at = last, now
        self.done = asyncio.get_running_loop().create_future()

    def gone(self) -> bool:
        transport = self.transport
        return transport is None or transport.is_closing() or self.protocol.transport is not transport


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class StreamFanout:
    """Sends the event buffer's new events to every subscriber of one server, from one timer:
    after a publish, all subscribers are written in one pass (at most one pass per
    MIN_SEND_INTERVAL; an idle stream's first event goes at once), each the frames after its
    own index, encoded (and framed as a chunk) once for all subscribers at the same index
    with the same filter, written straight to its socket. A subscriber whose socket does
    not take more (its client reads slowly) is skipped and catches up, everything since its
    index in one write, when it drains. A stream with nothing sent for HEARTBEAT_SECONDS
    gets a `{}` heartbeat."""

    def __init__(self, buffer, loop: asyncio.AbstractEventLoop):
        self.buffer, self.loop = buffer, loop
        self.subscribers: list[_Subscriber] = []
        self._flush: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._flushed_at = -MIN_SEND_INTERVAL
        buffer.listeners.append(self.published)

    def add(self, sub: _Subscriber) -> None:
        self.subscribers.append(sub)
        self.buffer.subscribers += 1
        if sub.last < self.buffer.latest_index:
            self.published()
        if self._heartbeat is None:
            self._heartbeat = self.loop.call_at(sub.sent_at + HEARTBEAT_SECONDS, self.heartbeat)

    def remove(self, sub: _Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
            self.buffer.subscribers -= 1
        if not sub.done.done():
            sub.done.set_result(None)

    def published(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:  # applied on another thread (an HA follower's replication)
            self.loop.call_soon_threadsafe(self.published)
            return
        if self._flush is None and self.subscribers:
            self._flush = self.loop.call_at(max(self.loop.time(), self._flushed_at + MIN_SEND_INTERVAL), self.flush)

    def flush(self) -> None:
        self._flush = None
        now = self._flushed_at = self.loop.time()
        buffer, latest, sent, behind = self.buffer, self.buffer.latest_index, {}, False
        for sub in list(self.subscribers):
            if sub.gone():
                self.remove(sub)
            elif sub.last < latest:
                if sub.protocol.writing_paused:  # its client reads slowly: later, all at once
                    behind = True
                    continue
                key = (sub.last, sub.selector, sub.chunked)
                data = sent.get(key)
                if data is None:
                    frames = encode_frames(e for e in buffer.after(sub.last) if event_matches(e, sub.topics, sub.namespace))
                    data = sent[key] = _chunk(frames) if frames and sub.chunked else frames
                sub.last = latest
                if data:
                    sub.transport.write(data)
                    sub.sent_at = now
        if behind:
            self._flush = self.loop.call_at(now + MIN_SEND_INTERVAL, self.flush)

    def heartbeat(self) -> None:
        self._heartbeat = None
        now = self.loop.time()
        for sub in list(self.subscribers):
            if sub.gone():
                self.remove(sub)
            elif now - sub.sent_at >= HEARTBEAT_SECONDS and not sub.protocol.writing_paused:
                sub.transport.write(_chunk(b"{}\n") if sub.chunked else b"{}\n")
                sub.sent_at = now
        if self.subscribers:
            due = min(sub.sent_at for sub in self.subscribers) + HEARTBEAT_SECONDS
            self._heartbeat = self.loop.call_at(max(due, now + 1.0), self.heartbeat)


def fanout_of(buffer, loop: asyncio.AbstractEventLoop) -> StreamFanout:
    fanout = buffer.fanout
    if fanout is None or fanout.loop is not loop:
        if fanout is not None:
            buffer.listeners.remove(fanout.published)
        fanout = buffer.fanout = StreamFanout(buffer, loop)
    return fanout


async def event_stream(request: web.Request) -> web.StreamResponse:
    server = server_of(request)
    topics = parse_topics(request.query.getall("topic", []))
    namespace = request.query.get("namespace") or "default"
    try:
        last = int(request.query.get("index") or 0)
    except ValueError:
        raise EndpointError(400, "Invalid index") from None
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    buffer = server.events
    loop = asyncio.get_running_loop()
    fanout = fanout_of(buffer, loop)
    sub = _Subscriber(request.transport, request.protocol, topics, namespace, resp._payload_writer.chunked,
                      max(last, 0) if last else buffer.latest_index, loop.time())
    fanout.add(sub)
    try:
        await sub.done  # the fan-out writes the events; this ends when the client is gone
    finally:
        fanout.remove(sub)
    return resp


routes = [web.get("/v1/event/stream", event_stream)]
