"""Client <-> server RPC (`yurt.rpc`): framing, multiplexing, error mapping, and a real
client agent that registers, heartbeats, watches and reports over the RPC listener."""

import asyncio

import httpx
import msgspec
import pytest
from aiohttp import web

from yurt.api import APIError, AsyncClient
from yurt.api import ClientConfig as APIConfig
from yurt.client import ClientAgent, ClientConfig
from yurt.http import build_app
from yurt.rpc import INFO_PATH, MAX_FRAME, USE_HTTP, FrameBuffer, FrameError, decode_request, frame
from yurt.rpc.client import RPCServerAPI, connect, http_host, rpc_api_wrapper
from yurt.rpc.server import RPCServer, info_route
from yurt.server import Server, ServerConfig
from yurt.server.endpoints.jobs import register_job
from yurt.testing.mock import mock_job, mock_node
from yurt.structs.codec import to_wire


# --- framing ----------------------------------------------------------------------------------


def test_frames_split_anywhere_come_out_whole_and_in_order():
    data = b"".join(frame((seq, "PUT", "/v1/internal/allocs/update", {"a": "1"}, {"Allocs": [seq] * seq}))
                    for seq in range(1, 6))
    for step in (1, 3, 7, len(data)):
        buf, got = FrameBuffer(), []
        for i in range(0, len(data), step):
            got += [decode_request(p) for p in buf.feed(data[i:i + step])]
        assert [r.seq for r in got] == [1, 2, 3, 4, 5]
        assert msgspec.msgpack.decode(got[2].body) == {"Allocs": [3, 3, 3]} and got[2].params == {"a": "1"}
        assert not buf.buf  # nothing left over


def test_an_oversized_frame_is_refused():
    with pytest.raises(FrameError):
        FrameBuffer().feed((MAX_FRAME + 1).to_bytes(4, "big") + b"x")


def test_http_host_of_addresses():
    assert http_host("http://127.0.0.1:4646") == "127.0.0.1"
    assert http_host("10.0.0.5:4646") == "10.0.0.5"
    assert http_host("http://[::1]:4646/") == "::1"
    assert http_host("server.example") == "server.example"


# --- a server with its HTTP API and RPC listener ------------------------------------------------


class Agent:
    """An in-process server: HTTP on a free port (with the RPC info route), RPC on another."""

    def __init__(self):
        self.server = Server(ServerConfig(num_schedulers=1))
        self.rpc = RPCServer(self.server)
        self.paths: list[str] = []
        dispatch = self.rpc.dispatch

        def counting(req, conn):  # which requests came over RPC
            self.paths.append(req.path)
            return dispatch(req, conn)

        self.rpc.dispatch = counting
        self.runner: web.AppRunner | None = None
        self.http_port = 0

    async def start(self, rpc: bool = True) -> "Agent":
        await self.server.start()
        app = build_app(self.server)
        app.router.add_get(INFO_PATH, info_route(self.rpc))
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]
        if rpc:
            await self.rpc.start("127.0.0.1", 0)
        return self

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def stop_http(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def stop(self) -> None:
        await self.rpc.stop()
        await self.stop_http()
        await self.server.stop()


@pytest.fixture
async def agent():
    a = await Agent().start()
    yield a
    await a.stop()


async def _wait_for(predicate, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_requests_are_multiplexed_a_blocking_watch_does_not_hold_up_the_rest(agent):
    conn = await connect("127.0.0.1", agent.rpc.port, agent.rpc.id)
    try:
        node = to_wire(mock_node())
        rep = await conn.call("PUT", "/v1/internal/node/register", None, {"Node": node}, 10)
        assert rep.status == 200 and rep.body["HeartbeatTTL"] > 0 and rep.index >= 1
        first = await conn.call("GET", f"/v1/internal/node/{node['ID']}/allocs", {"index": 0}, None, 10)
        watch = asyncio.ensure_future(conn.call(
            "GET", f"/v1/internal/node/{node['ID']}/allocs", {"index": first.index, "wait": "20s"}, None, 30))
        for _ in range(3):  # answered while the watch waits on the same connection
            beat = await conn.call("PUT", f"/v1/internal/node/{node['ID']}/heartbeat", None, {"Status": "ready"}, 10)
            assert beat.status == 200
        assert not watch.done()
        job = mock_job(id="rpc-wake")
        job.task_groups[0].count = 1
        register_job(agent.server, job)  # placed on the only node: the watch wakes
        woke = await asyncio.wait_for(watch, 15)
        assert woke.status == 200 and woke.index > first.index
        (alloc_id,) = woke.body["Allocs"]
        got = await conn.call("PUT", "/v1/internal/allocs/get", None, {"AllocIDs": [alloc_id]}, 10)
        assert got.body[0]["ID"] == alloc_id and got.body[0]["Job"]["ID"] == "rpc-wake"
        upd = await conn.call("PUT", "/v1/internal/allocs/update", None,
                              {"Allocs": [{"ID": alloc_id, "ClientStatus": "running"}]}, 10)
        assert upd.status == 200
        assert agent.server.state.snapshot().alloc_by_id(alloc_id).client_status == "running"
    finally:
        conn.close()


async def test_errors_map_to_the_http_statuses(agent):
    conn = await connect("127.0.0.1", agent.rpc.port, agent.rpc.id)
    try:
        rep = await conn.call("PUT", "/v1/internal/node/nope/heartbeat", None, {"Status": "ready"}, 10)
        assert (rep.status, rep.body) == (404, "node not found")
        rep = await conn.call("PUT", "/v1/internal/allocs/update", None, {"Allocs": []}, 10)
        assert rep.status == 400 and "at least one allocation" in rep.body
        rep = await conn.call("GET", "/v1/internal/node/n1/allocs", {"index": "x"}, None, 10)
        assert rep.status == 400 and "Invalid blocking query" in rep.body
        rep = await conn.call("GET", "/v1/jobs", None, None, 10)  # not served over RPC
        assert (rep.status, rep.body) == (404, "404 page not found")
        rep = await conn.call("GET", "/v1/internal/node/n1/allocs", {"region": "elsewhere"}, None, 10)
        assert (rep.status, rep.body) == (500, "No path to region")
        agent.server.leadership, agent.server.leader = object(), False  # as an HA follower
        try:
            rep = await conn.call("PUT", "/v1/internal/node/n1/heartbeat", None, {"Status": "ready"}, 10)
            assert rep.status == USE_HTTP  # a write: the client sends it over HTTP, which forwards it
            rep = await conn.call("GET", "/v1/internal/node/n1/allocs", {"index": 0}, None, 10)
            assert rep.status == 200  # reads are answered by the follower
        finally:
            agent.server.leadership, agent.server.leader = None, True
    finally:
        conn.close()


async def test_a_bad_frame_closes_only_that_connection(agent):
    reader, writer = await asyncio.open_connection("127.0.0.1", agent.rpc.port)
    writer.write(b"\x00\x00\x00\x02\x91\x01")  # an array that is no request
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    conn = await connect("127.0.0.1", agent.rpc.port, agent.rpc.id)  # others are served
    conn.close()


async def test_connect_checks_it_reached_the_listener_it_asked_for(agent):
    with pytest.raises(ValueError, match="another server"):
        await connect("127.0.0.1", agent.rpc.port, "some-other-listener")


# --- the client's API object -----------------------------------------------------------------------


async def test_the_api_uses_rpc_for_internal_routes_and_http_for_the_rest(agent):
    api = RPCServerAPI(AsyncClient(APIConfig(address=agent.address)))
    try:
        data, meta = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        assert data == {"Allocs": {}} and meta.last_index >= 1 and meta.known_leader
        assert api.connected and agent.paths == [INFO_PATH, "/v1/internal/node/n1/allocs"]
        assert await api.get("/v1/jobs") == []  # over HTTP
        assert agent.paths[-1] == "/v1/internal/node/n1/allocs"
        with pytest.raises(APIError) as err:
            await api.put("/v1/internal/node/nope/heartbeat", {"Status": "ready"})
        assert err.value.status == 404
    finally:
        await api.aclose()


async def test_a_lost_connection_fails_its_requests_as_http_errors_and_the_next_reconnects(agent):
    api = RPCServerAPI(AsyncClient(APIConfig(address=agent.address)))
    try:
        await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        _, meta = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        watch = asyncio.ensure_future(api.request("GET", "/v1/internal/node/n1/allocs",
                                                  {"index": meta.last_index, "wait": "20s"}))
        await _wait_for(lambda: agent.rpc.connections)
        await asyncio.sleep(0.1)
        for conn in list(agent.rpc.connections):
            conn.close()
        with pytest.raises(httpx.ReadError):
            await asyncio.wait_for(watch, 5)
        data, _ = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        assert data == {"Allocs": {}} and api.connected
        assert agent.paths.count(INFO_PATH) == 2  # reconnected (and checked the listener again)
    finally:
        await api.aclose()


async def test_a_server_without_a_listener_is_spoken_to_over_http():
    agent = await Agent().start(rpc=False)
    api = RPCServerAPI(AsyncClient(APIConfig(address=agent.address)))
    try:
        data, _ = await api.request("GET", "/v1/internal/node/n1/allocs", {"index": 0})
        assert data == {"Allocs": {}} and not api.connected and agent.paths == []
        with pytest.raises(APIError) as err:  # as over RPC: the HTTP route's error
            await api.put("/v1/internal/node/nope/heartbeat", {"Status": "ready"})
        assert err.value.status == 404
    finally:
        await api.aclose()
        await agent.stop()


async def test_a_client_agent_runs_its_allocs_over_rpc(agent, tmp_path):
    config = ClientConfig(data_dir=str(tmp_path / "client"), node_name="rpc-client", servers=[agent.address],
                          mock_driver_enabled=True, alloc_wait="2s", update_interval=0.05,
                          heartbeat_interval=0.2)
    client = ClientAgent(config, wrap_api=rpc_api_wrapper)
    await client.start()
    try:
        await _wait_for(lambda: agent.server.state.snapshot().node_by_id(client.node.id))
        assert client.api.connected
        await agent.stop_http()  # from here on only the RPC listener answers
        job = mock_job(id="rpc-client-job")
        group = job.task_groups[0]
        group.count = 2
        group.tasks[0].driver, group.tasks[0].config = "mock_driver", {"run_for": "1h"}
        register_job(agent.server, job)
        await _wait_for(lambda: [a for a in agent.server.state.snapshot().allocs_by_node(client.node.id)
                                 if a.client_status == "running"][1:])
        seen = set(agent.paths)
        # the watch's delta form brings the allocs themselves: no `allocs/get` after it
        assert {"/v1/internal/node/register", f"/v1/internal/node/{client.node.id}/allocs",
                "/v1/internal/allocs/update"} <= seen
        beats = agent.paths.count(f"/v1/internal/node/{client.node.id}/heartbeat")
        await _wait_for(lambda: agent.paths.count(f"/v1/internal/node/{client.node.id}/heartbeat") > beats)
    finally:
        await client.destroy_all_allocs()
        await client.stop()


def test_request_frames_are_msgpack_arrays():
    payload = bytes(frame((7, "GET", "/p", None, None)))[4:]
    assert msgspec.msgpack.decode(payload) == [7, "GET", "/p", None, None]


def test_routes_are_looked_up_once_and_the_cache_stays_bounded(monkeypatch):
    from yurt.agent.local_server import LocalServerAPI

    monkeypatch.setattr(LocalServerAPI, "_ROUTES_MAX", 3)
    api = LocalServerAPI(object(), None)
    for _ in range(2):
        for n in range(5):
            handler, is_write, arg = api._handler("GET", f"/v1/internal/node/n{n}/allocs")
            assert handler == api._node_alloc_versions and not is_write and arg == f"n{n}"
            handler, is_write, arg = api._handler("PUT", f"/v1/internal/node/n{n}/heartbeat")
            assert handler == api._node_heartbeat and is_write and arg == f"n{n}"
        assert api._handler("GET", "/v1/internal/node/n1/heartbeat") is None
        assert api._handler("DELETE", "/v1/internal/allocs/update") is None
        assert api._handler("PUT", "/v1/internal/allocs/update")[1] is True
        assert len(api._routes) <= 3
