"""The client's alloc watch in its delta form (`ClientAgent._watch_allocs`, `yurt.http.alloc_delta`)
against a real server state, over HTTP and over the in-process link (`LocalServerAPI`): after
every wake the client's runners are exactly the server's allocs of the node, at their
AllocModifyIndex: no change and no removal missed. The runners are stubs (nothing runs)."""

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from yurt.agent.local_server import LocalServerAPI
from yurt.api import AsyncClient
from yurt.api import ClientConfig as APIConfig
from yurt.client import ClientAgent, ClientConfig
from yurt.http import build_app
from yurt.server import FakeClock, Server, ServerConfig
from yurt.state.commands import AllocClientUpdate, AllocUpdate, EvalDelete, JobRegister, PlanApply
from yurt.state.txn import node_allocs_key
from yurt.structs.base import evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node

NOWHERE = "127.0.0.1:9"


class StubRunner:
    def __init__(self, agent, alloc):
        self.alloc = alloc
        self.terminal = False
        self.destroyed = False
        self.updates = 0

    def start(self):
        pass

    def update(self, alloc):
        self.alloc = alloc
        self.updates += 1

    async def stop(self):
        self.terminal = True

    async def destroy(self):
        self.destroyed = True


class StubGC:
    async def make_room(self, n):
        pass


class CountingAPI:
    """The API client, counting requests by path kind."""

    def __init__(self, api):
        self.api = api
        self.calls: list[str] = []

    async def request(self, method, path, params=None, body=None):
        self.calls.append("get" if path.endswith("/allocs/get") else "full" if "delta" not in (params or {})
                          else "delta")
        return await self.api.request(method, path, params, body)

    async def put(self, path, body=None, **params):
        return (await self.request("PUT", path, params, body))[0]

    async def aclose(self):
        await self.api.aclose()


@pytest.fixture
async def yserver():
    srv = Server(ServerConfig(num_schedulers=0, alloc_update_batch_window=0.01), clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture(params=["http", "local"])
async def watching(request, yserver, tmp_path, monkeypatch):
    """A client agent (not started: only its watch loop runs, once the test calls
    `agent.watch()`) on a node of `yserver`."""
    monkeypatch.setattr("yurt.client.agent.AllocRunner", StubRunner)
    http_server = None
    if request.param == "http":
        http_server = TestServer(build_app(yserver))
        await http_server.start_server()
        api = AsyncClient(APIConfig(address=f"http://127.0.0.1:{http_server.port}"))
    else:
        api = LocalServerAPI(yserver, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    agent = ClientAgent(ClientConfig(data_dir=str(tmp_path / "c"), servers=[NOWHERE], alloc_wait="2s"))
    agent._apis = [CountingAPI(api)]
    agent.node = mock_node()
    agent.gc = StubGC()
    agent.registered.set()
    loops = []
    agent.watch = lambda: loops.append(asyncio.create_task(agent._watch_allocs()))
    try:
        yield agent
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, *agent._ops, return_exceptions=True)
        await api.aclose()
        if http_server is not None:
            await http_server.close()


def _job(server):
    job = mock_job()
    server.state.apply(JobRegister(job=job, submit_time=1))
    return server.state.snapshot().job_by_id(job.namespace, job.id)


def _place(server, job, node, n, first=0):
    allocs = [mock_alloc(job, node, index=first + i) for i in range(n)]
    server.state.apply(PlanApply(eval_id="e1", job=job, node_allocation={node.id: allocs}, updated_at=1))
    return allocs


def _stop(server, alloc_id):
    stored = server.state.snapshot().alloc_by_id(alloc_id)
    server.state.apply(PlanApply(eval_id="e2", node_update={stored.node_id: [evolve(stored, desired_status="stop")]},
                                 updated_at=2))


def _remove(server, alloc_id):
    server.state.apply(EvalDelete(eval_ids=[], alloc_ids=[alloc_id]))


async def _in_step(agent, server):
    """Wait until the client has answered up to the server's index for its node, then check
    that its runners are the node's allocs at their AllocModifyIndex."""
    key = node_allocs_key(agent.node.id)
    for _ in range(250):
        if agent.alloc_index and agent.alloc_index >= server.state.snapshot().table_index(key):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the client's watch did not catch up")
    await asyncio.sleep(0)  # let spawned destroys run
    live = {aid: r.alloc.alloc_modify_index for aid, r in agent.alloc_runners.items()}
    assert live == server.state.snapshot().alloc_versions_by_node(agent.node.id).to_dict()


async def test_client_sees_every_add_change_and_removal(watching, yserver):
    agent, server = watching, yserver
    agent.watch()
    api = agent._apis[0]
    job = _job(server)
    node = agent.node
    placed = _place(server, job, node, 4)
    await _in_step(agent, server)
    assert "get" not in api.calls  # the allocs came with the watch answer

    _stop(server, placed[0].id)
    await _in_step(agent, server)
    assert agent.alloc_runners[placed[0].id].alloc.desired_status == "stop"

    server.state.apply(AllocClientUpdate(allocs=[AllocUpdate(id=placed[2].id, client_status="running")],
                                         updated_at=3))
    more = _place(server, job, node, 2, first=10)
    await _in_step(agent, server)
    assert set(more[i].id for i in range(2)) <= set(agent.alloc_runners)
    assert "get" not in api.calls and "full" not in api.calls

    # a removal: the count does not add up, the client takes the full map and drops the runner
    removed = agent.alloc_runners[placed[1].id]
    _remove(server, placed[1].id)
    await _in_step(agent, server)
    assert removed.destroyed and placed[1].id not in agent.alloc_runners
    assert "full" in api.calls

    # a removal and a placement in one wake
    calls = len(api.calls)
    gone = agent.alloc_runners[placed[3].id]
    _remove(server, placed[3].id)
    _place(server, job, node, 1, first=20)
    await _in_step(agent, server)
    assert gone.destroyed and placed[3].id not in agent.alloc_runners
    assert "full" in api.calls[calls:]


async def test_delta_wakes_take_one_request(watching, yserver):
    agent, server = watching, yserver
    agent.watch()
    job = _job(server)
    _place(server, job, agent.node, 2)
    await _in_step(agent, server)
    calls = len(agent._apis[0].calls)
    for i in range(3):
        _place(server, job, agent.node, 1, first=100 + i)
        await _in_step(agent, server)
    assert agent._apis[0].calls[calls:] == ["delta"] * (len(agent._apis[0].calls) - calls)
    assert len(agent.alloc_runners) == 5


async def test_restored_runners_the_server_does_not_have_are_removed(watching, yserver):
    """The first answer (index 0) is all of the node's allocs: a runner not among them goes."""
    agent, server = watching, yserver
    stale = StubRunner(agent, mock_alloc(_job(server), agent.node))
    agent.alloc_runners[stale.alloc.id] = stale
    agent.watch()
    _place(server, _job(server), agent.node, 1)
    await _in_step(agent, server)
    assert stale.destroyed


async def test_local_link_answers_what_the_route_answers(yserver):
    server = yserver
    node = mock_node()
    job = _job(server)
    placed = _place(server, job, node, 3)
    http_server = TestServer(build_app(server))
    await http_server.start_server()
    http = AsyncClient(APIConfig(address=f"http://127.0.0.1:{http_server.port}"))
    local = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
    path = f"/v1/internal/node/{node.id}/allocs"
    try:
        first, meta = await local.request("GET", path, {"index": 0, "delta": 1})
        assert first == (await http.request("GET", path, {"index": 0, "delta": 1}))[0]
        assert first["Total"] == 3 and {a["ID"] for a in first["Changed"]} == {a.id for a in placed}
        _stop(server, placed[0].id)
        _remove(server, placed[1].id)
        params = {"index": meta.last_index, "wait": "2s", "delta": 1, "known": 3}
        local_answer, local_meta = await local.request("GET", path, params)
        http_answer, http_meta = await http.request("GET", path, params)
        assert local_answer == http_answer and local_meta.last_index == http_meta.last_index
        assert local_answer["Total"] == 2 and [a["ID"] for a in local_answer["Changed"]] == [placed[0].id]
    finally:
        await local.aclose()
        await http.aclose()
        await http_server.close()
