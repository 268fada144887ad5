"""/v1/event/stream: frames for the subscribed topics, filtered by key and namespace."""

import asyncio
import json

from api_helpers import register, register_node
from yurt.http.routes_events import event_matches, parse_topics
from yurt.server.events import Event


async def read_frame(resp, timeout=5.0) -> dict:
    while True:
        line = await asyncio.wait_for(resp.content.readline(), timeout)
        frame = json.loads(line)
        if frame:  # skip heartbeats
            return frame


async def wait_for_subscriber(server):
    for _ in range(100):
        if server.events.subscribers:
            return
        await asyncio.sleep(0.01)


async def test_job_topic_sees_register(api, server):
    resp = await api.get("/v1/event/stream?topic=Job:web")
    await wait_for_subscriber(server)
    await register(api, "other")
    await register(api, "web")
    frame = await read_frame(resp)
    (event,) = frame["Events"]
    assert event["Topic"] == "Job" and event["Type"] == "JobRegistered" and event["Key"] == "web"
    assert event["Payload"]["Job"]["ID"] == "web" and frame["Index"] == event["Index"]
    resp.close()


async def test_all_topics_include_evals_and_nodes(api, server):
    resp = await api.get("/v1/event/stream")
    await wait_for_subscriber(server)
    await register_node(api)
    frame = await read_frame(resp)
    assert frame["Events"][0]["Type"] == "NodeRegistration"
    assert frame["Events"][0]["Payload"]["Node"]["SecretID"] == ""
    await register(api, "web")
    frame = await read_frame(resp)
    assert [e["Topic"] for e in frame["Events"]] == ["Job", "Evaluation"]
    resp.close()


def test_topic_and_namespace_matching():
    ev = Event("Evaluation", "EvaluationUpdated", "e1", "default", 5, {}, ["web", ""])
    assert event_matches(ev, parse_topics(["Evaluation:web"]), "default")
    assert event_matches(ev, parse_topics(["*"]), "default")
    assert not event_matches(ev, parse_topics(["Job:*"]), "default")
    assert not event_matches(ev, parse_topics(["Evaluation:*"]), "other")
    assert event_matches(ev, parse_topics(["Evaluation:*"]), "*")
