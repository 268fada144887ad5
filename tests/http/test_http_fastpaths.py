"""The HTTP layer's shortcuts keep answers exact: `GET /v1/jobs` cached per table index,
request bodies decoded by msgspec (stdlib words for errors), `?wait=` parsed once."""

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from yurt.http import build_app
from yurt.http.query import _wait_seconds
from yurt.server import FakeClock, Server, ServerConfig

from api_helpers import register, register_node


@pytest.fixture
async def busy_api():
    config = ServerConfig(num_schedulers=1, min_heartbeat_ttl=1.0, heartbeat_grace=1.0, alloc_update_batch_window=0.01)
    srv = Server(config, clock=FakeClock())
    await srv.start()
    client = TestClient(TestServer(build_app(srv)))
    await client.start_server()
    client.yurt_server = srv
    yield client
    await client.close()
    await srv.stop()


async def test_jobs_list_follows_every_change(busy_api):
    api = busy_api
    await register(api, "web")
    for _ in range(200):  # the scheduler thread may change web's summary between two reads
        first = await api.get("/v1/jobs")
        again = await api.get("/v1/jobs")
        if first.headers["X-Nomad-Index"] == again.headers["X-Nomad-Index"]:
            break
        await asyncio.sleep(0.05)
    assert first.headers["X-Nomad-Index"] == again.headers["X-Nomad-Index"]
    assert await first.read() == await again.read()
    await register(api, "db")
    listed = await (await api.get("/v1/jobs")).json()
    assert [j["ID"] for j in listed] == ["db", "web"]
    assert [j["ID"] for j in await (await api.get("/v1/jobs?prefix=w")).json()] == ["web"]
    await register_node(api)  # the scheduler places web's allocs: its summary changes
    for _ in range(1000):  # the scheduler thread may be slow on a loaded machine
        web = next(j for j in await (await api.get("/v1/jobs")).json() if j["ID"] == "web")
        if web["JobSummary"]["Summary"]["web"]["Starting"]:
            break
        await asyncio.sleep(0.02)
    in_state = api.yurt_server.state.snapshot().job_summary("default", "web")
    assert web["JobSummary"]["Summary"]["web"]["Starting"] > 0, in_state


async def test_bad_json_body_is_a_400_in_the_stdlib_words(api):
    resp = await api.put("/v1/jobs", data=b'{"Job": ')
    assert resp.status == 400
    assert (await resp.text()).startswith("Failed to parse JSON input: Expecting value")


def test_wait_is_parsed_once_per_value():
    assert _wait_seconds("10s") == 10.0
    assert _wait_seconds("10m") == 300.0  # capped at MAX_WAIT
    with pytest.raises(ValueError):
        _wait_seconds("ten")
