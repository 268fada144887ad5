import pytest
from aiohttp.test_utils import TestClient, TestServer

from yurt.http import build_app
from yurt.server import FakeClock, Server, ServerConfig


def make_config(**overrides) -> ServerConfig:
    defaults = dict(num_schedulers=0, min_heartbeat_ttl=1.0, heartbeat_grace=1.0,
                    alloc_update_batch_window=0.01)
    defaults.update(overrides)
    return ServerConfig(**defaults)


@pytest.fixture
async def server():
    srv = Server(make_config(), clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def api(server):
    client = TestClient(TestServer(build_app(server)))
    await client.start_server()
    yield client
    await client.close()
