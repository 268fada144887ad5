"""An in-process server (no schedulers, fake clock) and an HTTP test client for it."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from yurt.http import build_app
from yurt.server import FakeClock, Server, ServerConfig


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=0, alloc_update_batch_window=0.01), clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def api(server):
    client = TestClient(TestServer(build_app(server)))
    await client.start_server()
    yield client
    await client.close()
