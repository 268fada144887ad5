import sys
import os

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakeserver import FakeServer  # noqa: E402

from yurt.client import ClientAgent, ClientConfig  # noqa: E402


@pytest.fixture
async def server():
    fake = FakeServer()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def client_config(tmp_path, server):
    def make(**kw) -> ClientConfig:
        return ClientConfig(
            data_dir=str(tmp_path / "data"),
            node_name="test-node",
            servers=[server.address],
            raw_exec_enabled=True,
            alloc_wait="2s",
            update_interval=0.05,
            **kw,
        )

    return make


@pytest.fixture
async def agent(client_config):
    agents = []

    async def start(**kw) -> ClientAgent:
        a = ClientAgent(client_config(**kw))
        await a.start()
        await a.registered.wait()
        agents.append(a)
        return a

    yield start
    for a in agents:
        try:
            await a.stop()
            await a.destroy_all_allocs()  # leave no task behind, even when a test failed
        except Exception:
            pass
