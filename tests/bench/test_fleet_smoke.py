"""A tiny fleet against a real server process: 5 nodes, a count-20 job, all running.

Both node kinds run: the light simulated node and the real ClientAgent with the mock
driver. A regression in registration, placement, the alloc watch or status updates
shows up here as a timeout."""

import os
import sys

import aiohttp
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.agentproc import AgentProcess  # noqa: E402
from bench.fleet import Fleet  # noqa: E402
from bench.jobs import mock_job  # noqa: E402

NODES, COUNT = 5, 20


@pytest.fixture
def server():
    # one server per test: nodes of a stopped fleet would stay "ready" until their TTL ran out
    agent = AgentProcess(mode="server").start()
    yield agent
    agent.stop()


async def _job_summary(base: str, job_id: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/job/{job_id}/summary") as resp:
            resp.raise_for_status()
            return (await resp.json())["Summary"]["g"]


@pytest.mark.parametrize("mode", ["sim", "real"])
async def test_fleet_places_and_runs_a_job(server, mode):
    fleet = Fleet(server.address, NODES, mode=mode, prefix=f"smoke-{mode}")
    job_id = f"smoke-{mode}"
    try:
        await fleet.start()
        assert await fleet.wait(lambda: fleet.registered() == NODES, timeout=10), "nodes did not register"
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{server.address}/v1/jobs", json=mock_job(job_id, COUNT)) as resp:
                assert resp.status == 200, await resp.text()
        assert await fleet.wait(lambda: fleet.running() >= COUNT, timeout=15), f"running: {fleet.running()}"
        assert fleet.running() == COUNT
        # both kinds pull new allocs by ID rather than watching full allocs
        if mode == "sim":
            assert fleet.counters.allocs_pulled == COUNT
        else:
            assert not any(agent._legacy_watch for agent in fleet.nodes)
            assert all(agent.api.connected for agent in fleet.nodes)  # over the RPC listener

        async def server_sees_running():
            return (await _job_summary(server.address, job_id))["Running"] == COUNT

        for _ in range(50):
            if await server_sees_running():
                break
            await fleet.wait(lambda: False, timeout=0.1)
        summary = await _job_summary(server.address, job_id)
        assert summary["Running"] == COUNT and summary["Queued"] == 0, summary
    finally:
        await fleet.stop()
