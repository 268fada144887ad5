"""The delta form of the client's alloc watch (`GET /v1/internal/node/:id/allocs?delta=1`,
`yurt.http.alloc_delta`): the allocs changed since `index` in full, with the node's alloc
count, so a client sees every removal; the client (`ClientAgent._watch_allocs`, over HTTP and
over the in-process link `LocalServerAPI`: after every wake its runners are exactly the
server's allocs of the node, at their AllocModifyIndex; the runners are stubs, nothing runs)
and the simulated node speaking it."""

import asyncio
import os
import sys

import pytest
from aiohttp.test_utils import TestServer

from yurt.agent.local_server import LocalServerAPI
from yurt.api import AsyncClient
from yurt.api import ClientConfig as APIConfig
from yurt.client import ClientAgent, ClientConfig
from yurt.http import build_app
from yurt.state.commands import (
    AllocClientUpdate,
    AllocUpdate,
    EvalDelete,
    JobRegister,
    PlanApply,
)
from yurt.state.txn import node_allocs_key
from yurt.structs import to_wire
from yurt.structs.base import evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.fleet import sim_node_template
from bench.simnode import FleetCounters, SimNode

NOWHERE = "127.0.0.1:9"  # nothing answers HTTP there


async def _register_node(api):
    node = mock_node()
    resp = await api.put("/v1/internal/node/register", json={"Node": to_wire(node)})
    assert resp.status == 200, await resp.text()
    return node


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
    stopped = evolve(stored, desired_status="stop")
    return server.state.apply(PlanApply(eval_id="e2", node_update={stored.node_id: [stopped]}, updated_at=2))


def _remove(server, alloc_id):
    return server.state.apply(EvalDelete(eval_ids=[], alloc_ids=[alloc_id]))


def _running(server, alloc_id):
    server.state.apply(AllocClientUpdate(allocs=[AllocUpdate(id=alloc_id, client_status="running")], updated_at=3))


async def _delta(api, node, index=0, **params):
    query = {"delta": "1", "index": str(index), **{k: str(v) for k, v in params.items()}}
    resp = await api.get(f"/v1/internal/node/{node.id}/allocs", params=query)
    assert resp.status == 200, await resp.text()
    return await resp.json(), int(resp.headers["X-Nomad-Index"])


async def test_delta_has_new_and_changed_allocs_in_full_and_the_count(server, api):
    node = await _register_node(api)
    job = _job(server)
    first = _place(server, job, node, 3)
    body, index = await _delta(api, node)
    assert body["Total"] == 3
    assert {a["ID"] for a in body["Changed"]} == {a.id for a in first}
    assert all(a["Job"]["ID"] == job.id for a in body["Changed"])  # as allocs/get answers them

    new = _place(server, job, node, 1, first=3)
    body, index2 = await _delta(api, node, index, wait="2s", known=3)
    assert index2 > index
    assert [a["ID"] for a in body["Changed"]] == [new[0].id] and body["Total"] == 4

    stop_index = _stop(server, first[0].id)
    body, index3 = await _delta(api, node, index2, wait="2s", known=4)
    assert [(a["ID"], a["DesiredStatus"], a["AllocModifyIndex"]) for a in body["Changed"]] == [
        (first[0].id, "stop", stop_index)]
    assert body["Total"] == 4 and index3 == stop_index


async def test_a_removal_shows_in_the_count(server, api):
    node = await _register_node(api)
    placed = _place(server, _job(server), node, 3)
    _, index = await _delta(api, node)
    _remove(server, placed[1].id)
    body, _ = await _delta(api, node, index, wait="2s", known=3)
    assert body == {"Total": 2, "Changed": []}  # known 3 + nothing new != 2: the client must resync
    # a removal and a placement before the client wakes: the count still does not add up
    _, index = await _delta(api, node)
    _remove(server, placed[0].id)
    new = _place(server, _job(server), node, 1, first=5)
    body, _ = await _delta(api, node, index, wait="2s", known=2)
    assert [a["ID"] for a in body["Changed"]] == [new[0].id] and body["Total"] == 2  # 2 + 1 != 2


async def test_with_known_a_status_report_does_not_wake_the_watch(server, api):
    node = await _register_node(api)
    placed = _place(server, _job(server), node, 2)
    _, index = await _delta(api, node)
    waiter = asyncio.create_task(_delta(api, node, index, wait="5s", known=2))
    await asyncio.sleep(0.1)
    _running(server, placed[0].id)  # wakes the node's key, changes nothing the client would pull
    await asyncio.sleep(0.3)
    assert not waiter.done(), "a status report woke a delta watch that knows the node's allocs"
    _remove(server, placed[1].id)
    body, _ = await asyncio.wait_for(waiter, 5)
    assert body == {"Total": 1, "Changed": []}
    # without `known` the same kind of wake answers, with nothing in it
    _, index = await _delta(api, node)
    waiter = asyncio.create_task(_delta(api, node, index, wait="5s"))
    await asyncio.sleep(0.1)
    _running(server, placed[0].id)
    body, after = await asyncio.wait_for(waiter, 5)
    assert body == {"Total": 1, "Changed": []} and after > index


async def test_a_stale_index_answers_below_it(server, api):
    node = await _register_node(api)
    _place(server, _job(server), node, 1)
    body, index = await _delta(api, node, 10_000, wait="200ms", known=1)
    assert index < 10_000 and body == {"Total": 1, "Changed": []}


async def test_without_delta_the_full_map_and_a_bad_known_is_refused(server, api):
    node = await _register_node(api)
    placed = _place(server, _job(server), node, 2)
    resp = await api.get(f"/v1/internal/node/{node.id}/allocs")
    assert set((await resp.json())["Allocs"]) == {a.id for a in placed}
    resp = await api.get(f"/v1/internal/node/{node.id}/allocs", params={"delta": "1", "known": "x"})
    assert resp.status == 400 and "known" in await resp.text()


async def _settled(sim, server, node_id, timeout=5.0):
    """Wait until the sim has answered up to the server's index for its node."""
    key = "allocs:node:" + node_id
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if sim.alloc_index >= server.state.snapshot().table_index(key) and sim.alloc_index:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the sim node's watch did not catch up")


async def test_sim_node_follows_adds_changes_and_removals(server, api):
    from yurt.rpc.server import RPCServer

    rpc = RPCServer(server)  # the sim node speaks what the real client speaks: RPC
    await rpc.start("127.0.0.1", 0)
    sim = SimNode(f"http://127.0.0.1:{api.server.port}", sim_node_template(), "sim-delta", FleetCounters(),
                  rpc=(rpc.port, rpc.id))
    node = mock_node(id=sim.id)  # for the allocs placed on it
    resp = await api.put("/v1/internal/node/register", json={"Node": sim.node})
    assert resp.status == 200
    sim.registered.set()
    watch = asyncio.create_task(sim._watch_loop())
    try:
        job = _job(server)

        def server_map():
            return server.state.snapshot().alloc_versions_by_node(sim.id).to_dict()

        placed = _place(server, job, node, 3)
        await _settled(sim, server, sim.id)
        assert sim.seen_index == server_map() and len(sim.seen_index) == 3
        assert set(sim.reported) == {a.id for a in placed}
        pulled = sim.counters.allocs_pulled
        _stop(server, placed[0].id)
        await _settled(sim, server, sim.id)
        assert sim.seen_index == server_map() and sim.counters.allocs_pulled == pulled + 1
        _remove(server, placed[1].id)
        _place(server, job, node, 1, first=7)
        await _settled(sim, server, sim.id)
        assert sim.seen_index == server_map() and placed[1].id not in sim.seen_index
        assert sim.counters.errors == 0
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        sim.watch_http.close()
        sim.http.close()
        await rpc.stop()


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


@pytest.fixture(params=["http", "local"])
async def watching(request, server, tmp_path, monkeypatch):
    """A client agent (not started: only its watch loop runs, once the test calls
    `agent.watch()`) on a node of `server`."""
    monkeypatch.setattr("yurt.client.agent.AllocRunner", StubRunner)
    http_server = None
    if request.param == "http":
        http_server = TestServer(build_app(server))
        await http_server.start_server()
        api = AsyncClient(APIConfig(address=f"http://127.0.0.1:{http_server.port}"))
    else:
        api = LocalServerAPI(server, AsyncClient(APIConfig(address=f"http://{NOWHERE}")))
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


async def test_client_sees_every_add_change_and_removal(watching, server):
    agent = watching
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
    assert {a.id for a in more} <= set(agent.alloc_runners)
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


async def test_delta_wakes_take_one_request(watching, server):
    agent = watching
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


async def test_restored_runners_the_server_does_not_have_are_removed(watching, server):
    """The first answer (index 0) is all of the node's allocs: a runner not among them goes."""
    agent = watching
    stale = StubRunner(agent, mock_alloc(_job(server), agent.node))
    agent.alloc_runners[stale.alloc.id] = stale
    agent.watch()
    _place(server, _job(server), agent.node, 1)
    await _in_step(agent, server)
    assert stale.destroyed


async def test_local_link_answers_what_the_route_answers(server):
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
