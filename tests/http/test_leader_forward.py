"""HA followers forward writes to the leader (yurt.http.leader_forward), hold them while there is
no leader, and answer only once they have applied the leader's index."""

import asyncio
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestServer

from yurt.http import leader_forward
from yurt.state.commands import SchedulerConfigSet
from yurt.structs import SchedulerConfiguration


async def fake_leader(server, seen: list):
    async def register(request):
        seen.append((request.method, request.path_qs, request.headers.get("X-Yurt-Forwarded"), await request.json()))
        return web.json_response({"EvalID": "e1"}, headers={"X-Nomad-Index": str(server.state.latest_index + 1)})

    app = web.Application()
    app.router.add_put("/v1/jobs", register)
    leader = TestServer(app)
    await leader.start_server()
    return leader


async def as_follower(server, leader_http: str, ttl: float = 0) -> None:
    await server.revoke_leadership()
    server.leadership = SimpleNamespace(leader_http=leader_http, ttl=ttl)


async def test_writes_go_to_the_leader_and_answer_once_applied_here(api, server):
    seen: list = []
    leader = await fake_leader(server, seen)
    await as_follower(server, f"http://127.0.0.1:{leader.port}")
    try:
        async def replicate_later():
            await asyncio.sleep(0.3)
            server.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))

        replication = asyncio.create_task(replicate_later())
        resp = await api.put("/v1/jobs?namespace=default", json={"Job": {"ID": "x"}})
        assert resp.status == 200 and await resp.json() == {"EvalID": "e1"}
        assert server.state.latest_index >= int(resp.headers["X-Nomad-Index"])  # read-your-writes here
        assert seen == [("PUT", "/v1/jobs?namespace=default", server.config.node_name, {"Job": {"ID": "x"}})]
        await replication
        assert (await api.get("/v1/jobs")).status == 200 and len(seen) == 1  # reads stay local
    finally:
        server.leadership = None
        await leader.close()


async def test_writes_are_held_until_a_leader_is_known(api, server, monkeypatch):
    seen: list = []
    leader = await fake_leader(server, seen)
    await as_follower(server, "")
    try:
        async def elect_later():
            await asyncio.sleep(0.3)
            server.leadership.leader_http = f"http://127.0.0.1:{leader.port}"

        election = asyncio.create_task(elect_later())
        resp = await api.put("/v1/jobs", json={"Job": {"ID": "x"}})
        assert resp.status == 200 and len(seen) == 1
        await election

        monkeypatch.setattr(leader_forward, "HOLD_TIMEOUT", 0.3)
        server.leadership.ttl = -2  # hold for HOLD_TIMEOUT, not a lease's time
        server.leadership.leader_http = "http://127.0.0.1:1"  # dead leader, nobody else
        resp = await api.put("/v1/jobs", json={"Job": {"ID": "y"}})
        assert resp.status == 500 and (await resp.text()).startswith("No cluster leader: forwarding to")
        server.leadership.leader_http = ""
        resp = await api.put("/v1/jobs", json={"Job": {"ID": "y"}})
        assert resp.status == 500 and await resp.text() == "No cluster leader"
        assert len(seen) == 1
    finally:
        server.leadership = None
        await leader.close()
