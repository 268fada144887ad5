"""Node (internal and public), alloc, agent, status and operator routes."""

from yurt.structs import Plan
from yurt.testing.mock import mock_alloc, mock_node

from api_helpers import node_json, register, register_node


async def test_node_register_list_read_heartbeat(api, server):
    node = await register_node(api)
    stubs = await (await api.get("/v1/nodes")).json()
    assert [s["ID"] for s in stubs] == [node.id]
    stub = stubs[0]
    for key in ("Address", "Datacenter", "Name", "NodeClass", "NodePool", "Drain",
                "SchedulingEligibility", "Status", "Drivers", "CreateIndex", "ModifyIndex"):
        assert key in stub, key
    assert stub["Address"] == "192.168.0.100" and stub["Status"] == "ready"
    full = await (await api.get(f"/v1/node/{node.id}")).json()
    assert full["ID"] == node.id and full["SecretID"] == "" and full["Drain"] is False
    short = await (await api.get(f"/v1/node/{node.id[:8]}")).json()
    assert short["ID"] == node.id
    resp = await api.put(f"/v1/internal/node/{node.id}/heartbeat", json={"Status": "ready"})
    assert resp.status == 200 and (await resp.json())["HeartbeatTTL"] > 0
    resp = await api.put("/v1/internal/node/unknown/heartbeat", json={"Status": "ready"})
    assert resp.status == 404 and await resp.text() == "node not found"


async def test_node_register_validation(api):
    data = node_json(mock_node())
    data["ID"] = ""
    resp = await api.put("/v1/internal/node/register", json={"Node": data})
    assert resp.status == 400 and "missing node ID" in await resp.text()


async def place(server, job_id, node):
    job = server.state.snapshot().job_by_id("default", job_id)
    plan = Plan(eval_id="manual", job=job)
    index = len(server.state.snapshot().allocs_by_node(node.id))
    alloc = mock_alloc(job, node, index=index)
    plan.append_alloc(alloc)
    result = server.applier.apply(plan)
    assert not result.rejected_nodes
    return alloc


async def test_alloc_routes_and_client_updates(api, server):
    node = await register_node(api)
    out = await register(api)
    alloc = await place(server, "web", node)
    stubs = await (await api.get("/v1/allocations")).json()
    assert [s["ID"] for s in stubs] == [alloc.id]
    assert stubs[0]["JobType"] == "service" and "Job" not in stubs[0]
    full = await (await api.get(f"/v1/allocation/{alloc.id}")).json()
    assert full["Job"]["ID"] == "web"
    node_allocs = await (await api.get(f"/v1/node/{node.id}/allocations")).json()
    assert node_allocs[0]["ID"] == alloc.id and node_allocs[0]["Job"]["ID"] == "web"
    job_allocs = await (await api.get("/v1/job/web/allocations")).json()
    assert [a["ID"] for a in job_allocs] == [alloc.id]

    resp = await api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": alloc.id, "ClientStatus": "failed", "ClientDescription": "boom", "TaskStates": None}]})
    assert resp.status == 200, await resp.text()
    stored = server.state.snapshot().alloc_by_id(alloc.id)
    assert stored.client_status == "failed"
    triggers = [e.triggered_by for e in server.state.snapshot().evals_by_job("default", "web")]
    assert "alloc-failure" in triggers
    assert out["EvalID"]


async def test_alloc_stop_creates_eval(api, server):
    node = await register_node(api)
    await register(api)
    alloc = await place(server, "web", node)
    resp = await api.post(f"/v1/allocation/{alloc.id}/stop")
    out = await resp.json()
    ev = await (await api.get(f"/v1/evaluation/{out['EvalID']}")).json()
    assert ev["TriggeredBy"] == "alloc-stop"
    stored = server.state.snapshot().alloc_by_id(alloc.id)
    assert stored.desired_transition.migrate is True
    resp = await api.post("/v1/allocation/nope/stop")
    assert resp.status == 404 and await resp.text() == "allocation not found"


async def test_agent_and_status_routes(api, server):
    me = await (await api.get("/v1/agent/self")).json()
    assert me["config"]["Region"] == "global" and me["member"]["Tags"]["region"] == "global"
    members = await (await api.get("/v1/agent/members")).json()
    assert members["Members"][0]["Status"] == "alive"
    assert await (await api.get("/v1/status/leader")).json() == "127.0.0.1:4647"
    assert await (await api.get("/v1/status/peers")).json() == ["127.0.0.1:4647"]
    assert await (await api.get("/v1/regions")).json() == ["global"]
    assert await (await api.get("/v1/agent/servers")).json() == ["127.0.0.1:4647"]
    health = await (await api.get("/v1/agent/health")).json()
    assert health["server"]["ok"] is True
    resp = await api.get("/v1/does/not/exist")
    assert resp.status == 404 and await resp.text() == "404 page not found"
    resp = await api.delete("/v1/jobs")
    assert resp.status == 405 and await resp.text() == "Invalid method"


async def test_scheduler_configuration(api):
    out = await (await api.get("/v1/operator/scheduler/configuration")).json()
    assert out["SchedulerConfig"]["SchedulerAlgorithm"] == "binpack"
    resp = await api.put("/v1/operator/scheduler/configuration", json={"SchedulerAlgorithm": "spread"})
    assert (await resp.json())["Updated"] is True
    out = await (await api.get("/v1/operator/scheduler/configuration")).json()
    assert out["SchedulerConfig"]["SchedulerAlgorithm"] == "spread"
    stale = out["SchedulerConfig"]["ModifyIndex"] + 100
    resp = await api.put(f"/v1/operator/scheduler/configuration?cas={stale}", json={"SchedulerAlgorithm": "binpack"})
    assert (await resp.json())["Updated"] is False
    resp = await api.put("/v1/operator/scheduler/configuration", json={"SchedulerAlgorithm": "nope"})
    assert resp.status == 400


async def test_metrics_json_and_prometheus(api):
    await register(api)
    out = await (await api.get("/v1/metrics")).json()
    gauges = {g["Name"]: g["Value"] for g in out["Gauges"]}
    assert gauges["nomad.nomad.broker.total_ready"] == 1  # no workers in these tests
    text = await (await api.get("/v1/metrics?format=prometheus")).text()
    assert "nomad_nomad_broker_total_ready 1" in text


async def test_node_ops_errors(api):
    resp = await api.post("/v1/node/unknown/eligibility", json={"Eligibility": "eligible"})
    assert resp.status == 404 and await resp.text() == "node not found"
    node = await register_node(api)
    resp = await api.post(f"/v1/node/{node.id}/eligibility", json={"Eligibility": "maybe"})
    assert resp.status == 400
    resp = await api.post(f"/v1/node/{node.id}/drain", json={"DrainSpec": {"Deadline": 0}})
    assert resp.status == 200
    resp = await api.post(f"/v1/node/{node.id}/eligibility", json={"Eligibility": "eligible"})
    assert resp.status == 400 and "draining" in await resp.text()
    resp = await api.post(f"/v1/node/{node.id}/purge")
    assert resp.status == 200
    assert (await api.get(f"/v1/node/{node.id}")).status == 404


async def test_deployment_and_namespace_stubs(api):
    await register(api)
    assert await (await api.get("/v1/job/web/deployment")).json() is None
    assert await (await api.get("/v1/deployments")).json() == []
    names = [n["Name"] for n in await (await api.get("/v1/namespaces")).json()]
    assert names == ["default"]


async def test_node_allocations_watch_ignores_other_nodes(api, server):
    import asyncio

    mine, other = await register_node(api), await register_node(api)
    await register(api)
    await place(server, "web", mine)
    resp = await api.get(f"/v1/node/{mine.id}/allocations")
    index = int(resp.headers["X-Nomad-Index"])
    watch = asyncio.create_task(api.get(f"/v1/node/{mine.id}/allocations?index={index}&wait=5s"))
    await asyncio.sleep(0.1)
    await place(server, "web", other)  # a change on another node: keeps waiting
    await asyncio.sleep(0.2)
    assert not watch.done()
    await place(server, "web", mine)
    resp = await asyncio.wait_for(watch, 5)
    assert len(await resp.json()) == 2 and int(resp.headers["X-Nomad-Index"]) > index


async def test_prefix_search(api):
    node = await register_node(api)
    out = await register(api, "web-search")
    resp = await api.post("/v1/search", json={"Prefix": "web-", "Context": "jobs"})
    assert (await resp.json())["Matches"] == {"jobs": ["web-search"]}
    resp = await api.post("/v1/search", json={"Prefix": out["EvalID"][:6], "Context": "all"})
    matches = (await resp.json())["Matches"]
    assert matches["evals"] == [out["EvalID"]] and matches["jobs"] == []
    resp = await api.post("/v1/search", json={"Prefix": node.id[:8], "Context": "nodes"})
    assert (await resp.json())["Matches"]["nodes"] == [node.id]
    resp = await api.post("/v1/search", json={"Prefix": "x", "Context": "bogus"})
    assert resp.status == 400


async def test_operator_raft_and_autopilot(api):
    raft = await (await api.get("/v1/operator/raft/configuration")).json()
    assert raft["Servers"][0]["Leader"] is True and raft["Servers"][0]["Voter"] is True
    health = await (await api.get("/v1/operator/autopilot/health")).json()
    assert health["Healthy"] is True and len(health["Servers"]) == 1


async def test_server_not_started_has_no_leader():
    from aiohttp.test_utils import TestClient, TestServer

    from yurt.http import build_app
    from yurt.server import Server, ServerConfig

    client = TestClient(TestServer(build_app(Server(ServerConfig(num_schedulers=0)))))
    await client.start_server()
    try:
        resp = await client.get("/v1/jobs")
        assert resp.status == 500 and await resp.text() == "No cluster leader"
    finally:
        await client.close()


async def test_node_pools(api):
    node = await register_node(api, node_pool="gpu")
    await register(api)
    names = [p["Name"] for p in await (await api.get("/v1/node/pools")).json()]
    assert names == ["all", "default", "gpu"]
    assert (await (await api.get("/v1/node/pool/gpu")).json())["Name"] == "gpu"
    resp = await api.get("/v1/node/pool/nope")
    assert resp.status == 404 and await resp.text() == "node pool not found"
    nodes = await (await api.get("/v1/node/pool/gpu/nodes")).json()
    assert [n["ID"] for n in nodes] == [node.id]
    assert await (await api.get("/v1/node/pool/gpu/jobs")).json() == []
    assert [j["ID"] for j in await (await api.get("/v1/node/pool/default/jobs")).json()] == ["web"]


async def test_node_evaluate_creates_evals_for_its_jobs(api, server):
    node = await register_node(api)
    await register(api)
    await place(server, "web", node)
    out = await (await api.post(f"/v1/node/{node.id}/evaluate")).json()
    assert len(out["EvalIDs"]) == 1
    ev = server.state.snapshot().eval_by_id(out["EvalIDs"][0])
    assert ev.triggered_by == "node-update" and ev.node_id == node.id and ev.job_id == "web"
