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
    buffer.subscribers += 1
    loop = asyncio.get_running_loop()
    sent_at = 0.0
    # subscribers with the same filter at the same index share one encoded answer
    selector = (frozenset((t, frozenset(k)) for t, k in topics.items()), namespace)
    try:
        last = max(last, 0) if last else buffer.latest_index
        while True:
            if not await buffer.wait_after(last, HEARTBEAT_SECONDS):
                await resp.write(b"{}\n")
                continue
            pause = sent_at + MIN_SEND_INTERVAL - loop.time()
            if pause > 0:  # sent a moment ago: gather what lands meanwhile into one write
                await asyncio.sleep(pause)
            sent_at = loop.time()
            since, last = last, buffer.latest_index
            frames = buffer.shared((since, last, selector), lambda: encode_frames(
                e for e in buffer.after(since) if event_matches(e, topics, namespace)))
            if frames:
                await resp.write(frames)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        buffer.subscribers -= 1
    return resp


routes = [web.get("/v1/event/stream", event_stream)]
