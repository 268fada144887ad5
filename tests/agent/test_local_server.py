"""An agent that runs the server and a client: the client reaches its own server in process
(`yurt.agent.local_server`), not through its HTTP port. Here nothing listens on the
client's server address, so every call that reached HTTP would fail."""

import asyncio

import httpx
import pytest

from yurt.agent.local_server import LocalServerAPI, local_api_wrapper
from yurt.api import APIError, AsyncClient
from yurt.api import ClientConfig as APIConfig
from yurt.client import ClientAgent, ClientConfig
from yurt.server import Server, ServerConfig
from yurt.server.endpoints.jobs import register_job
from yurt.testing.mock import mock_job

NOWHERE = "127.0.0.1:9"  # discard port: nothing answers HTTP there


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=1))
    await srv.start()
    yield srv
    await srv.stop()


def _job():
    job = mock_job(id="local-link")
    group = job.task_groups[0]
    group.count = 1
    group.tasks[0].driver = "raw_exec"
    group.tasks[0].config = {"command": "/bin/sleep", "args": ["30"]}
    group.tasks[0].resources.cpu, group.tasks[0].resources.memory_mb = 100, 32
    return job


async def _wait_for(predicate, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_client_registers_runs_and_reports_through_the_server_in_process(server, tmp_path):
    config = ClientConfig(data_dir=str(tmp_path / "client"), node_name="local", servers=[NOWHERE],
                          raw_exec_enabled=True, alloc_wait="2s", update_interval=0.05)
    client = ClientAgent(config, wrap_api=local_api_wrapper(server, f"http://{NOWHERE}/"))
    await client.start()
    try:
        assert isinstance(client.api, LocalServerAPI)
        node = await _wait_for(lambda: server.state.snapshot().node_by_id(client.node.id))
        assert node.name == "local" and node.status == "ready"
        register_job(server, _job())
        alloc = await _wait_for(lambda: next(
            (a for a in server.state.snapshot().allocs_by_node(client.node.id)
             if (a.task_states or {}).get("web") and a.task_states["web"].state == "running"), None))
        assert alloc.client_status == "running"
        held = client.alloc_runners[alloc.id].alloc
        assert held.job is not None and held.job.id == "local-link"  # pulled with its job
        assert held is not server.state.snapshot().alloc_by_id(alloc.id)  # a copy, not the server's object
    finally:
        await client.destroy_all_allocs()
        await client.stop()


async def test_errors_are_api_errors_and_other_routes_go_over_http(server):
    api = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    try:
        with pytest.raises(APIError) as err:
            await api.put("/v1/internal/node/no-such-node/heartbeat", {"Status": "ready"})
        assert err.value.status == 404
        with pytest.raises(APIError) as err:
            await api.put("/v1/internal/allocs/update", {"Allocs": []})
        assert err.value.status == 400 and "at least one allocation" in err.value.text
        data, meta = await api.request("GET", "/v1/internal/node/some-node/allocs", {"index": 0, "wait": "1s"})
        assert data == {"Allocs": {}} and meta.last_index >= 1
        with pytest.raises(httpx.HTTPError):  # not an internal route: HTTP (nothing listens)
            await api.get("/v1/jobs")
    finally:
        await api.aclose()


async def test_blocking_query_waits_for_the_nodes_allocs_to_change(server):
    api = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    try:
        _, meta = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        started = asyncio.get_running_loop().time()
        _, again = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": meta.last_index, "wait": "200ms"})
        assert asyncio.get_running_loop().time() - started >= 0.2  # nothing changed: waited it out
        assert again.last_index == meta.last_index
    finally:
        await api.aclose()


async def test_writes_of_an_ha_follower_go_over_http(server):
    api = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    server.leadership, server.leader = object(), False  # as an HA follower
    try:
        with pytest.raises(httpx.HTTPError):
            await api.put("/v1/internal/node/n1/heartbeat", {"Status": "ready"})
        data, _ = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})  # reads stay local
        assert data == {"Allocs": {}}
    finally:
        server.leadership, server.leader = None, True
        await api.aclose()


async def _update_error(server, submit_nowait) -> APIError:
    """The error a client's status update gets when the batcher's `submit_nowait` (what the
    local API calls) is `submit_nowait`."""
    api = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    server.alloc_updates.submit_nowait = submit_nowait
    try:
        with pytest.raises(APIError) as err:
            await api.put("/v1/internal/allocs/update", {"Allocs": [{"ID": "a1", "ClientStatus": "running"}]})
        return err.value
    finally:
        await api.aclose()


async def test_a_server_failure_is_a_500_the_client_retries(server):
    def broken(updates):
        raise RuntimeError("plan applier stopped")

    error = await _update_error(server, broken)
    assert error.status == 500 and "plan applier stopped" in error.text


async def test_a_batch_that_fails_after_queueing_is_a_500_too(server):
    def queued_then_failed(updates):
        future = asyncio.get_running_loop().create_future()
        future.set_exception(RuntimeError("state store closed"))
        return future

    error = await _update_error(server, queued_then_failed)
    assert error.status == 500 and "state store closed" in error.text
