"""Deployment routes over a real server (no workers: the test runs the scheduler itself)."""

from api_helpers import job_json, register, register_node

from yurt.scheduler import new_scheduler
from yurt.server.gc import FORCE, GCThresholds, collect_garbage, find_garbage
from yurt.state.commands import AllocClientUpdate, AllocUpdate, EvalUpsert
from yurt.structs import SECOND, AllocDeploymentStatus, UpdateStrategy, to_wire


class _Planner:
    def __init__(self, server):
        self.server = server

    def submit_plan(self, plan):
        return self.server.applier.apply(plan), self.server.state.snapshot()

    def update_eval(self, ev):
        self.server.state.apply(EvalUpsert(evals=[ev]))

    create_eval = reblock_eval = update_eval


def schedule(server, eval_id):
    snap = server.state.snapshot()
    ev = snap.eval_by_id(eval_id)
    new_scheduler(ev.type, snap, _Planner(server), now_ns=server.now_ns()).process(ev)


def report_healthy(server, allocs, healthy=True):
    server.state.apply(AllocClientUpdate(allocs=[
        AllocUpdate(id=a["ID"], client_status="running", deployment_status=AllocDeploymentStatus(healthy=healthy))
        for a in allocs], updated_at=server.now_ns()))


def web_job(env="v1", canary=0, auto_revert=False):
    data = job_json("web")
    group = data["TaskGroups"][0]
    group["Count"] = 2
    group["Networks"] = None
    group["Update"] = to_wire(UpdateStrategy(max_parallel=1, stagger=SECOND, canary=canary, auto_revert=auto_revert,
                                             health_check="task_states", min_healthy_time=SECOND,
                                             healthy_deadline=60 * SECOND, progress_deadline=120 * SECOND))
    group["Tasks"][0]["Env"] = {"V": env}
    return data


async def run(api, server, **kw):
    resp = await api.put("/v1/jobs", json={"Job": web_job(**kw)})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    schedule(server, out["EvalID"])
    return out


async def get(api, path, status=200):
    resp = await api.get(path)
    assert resp.status == status, await resp.text()
    return await resp.json() if status == 200 else await resp.text()


async def test_deployment_reads(api, server):
    await register_node(api)
    await run(api, server)
    deps = await get(api, "/v1/deployments")
    assert len(deps) == 1
    d = deps[0]
    assert d["JobID"] == "web" and d["Status"] == "running" and d["StatusDescription"] == "Deployment is running"
    assert set(d["TaskGroups"]["web"]) >= {"AutoRevert", "AutoPromote", "ProgressDeadline", "RequireProgressBy",
                                           "Promoted", "PlacedCanaries", "DesiredCanaries", "DesiredTotal",
                                           "PlacedAllocs", "HealthyAllocs", "UnhealthyAllocs"}
    assert d["TaskGroups"]["web"]["DesiredTotal"] == 2 and d["TaskGroups"]["web"]["PlacedAllocs"] == 2
    assert (await get(api, f"/v1/deployment/{d['ID']}"))["ID"] == d["ID"]
    assert (await get(api, f"/v1/deployment/{d['ID'][:8]}"))["ID"] == d["ID"]
    assert await get(api, "/v1/deployment/nope", 404) == "deployment not found"
    allocs = await get(api, f"/v1/deployment/allocations/{d['ID']}")
    assert len(allocs) == 2
    assert (await get(api, "/v1/job/web/deployment"))["ID"] == d["ID"]
    assert [x["ID"] for x in await get(api, "/v1/job/web/deployments")] == [d["ID"]]
    assert await get(api, f"/v1/deployments?prefix={d['ID'][:4]}") != []
    assert await get(api, "/v1/job/other/deployment") is None


async def test_blocking_query_wakes_on_deployment_change(api, server):
    import asyncio

    await register_node(api)
    await run(api, server)
    resp = await api.get("/v1/deployments")
    index = int(resp.headers["X-Nomad-Index"])
    d = (await resp.json())[0]
    waiter = asyncio.create_task(api.get(f"/v1/deployment/{d['ID']}?index={index}&wait=5s"))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await api.put(f"/v1/deployment/pause/{d['ID']}", json={"Pause": True})
    resp = await asyncio.wait_for(waiter, 5)
    assert (await resp.json())["Status"] == "paused" and int(resp.headers["X-Nomad-Index"]) > index


async def test_promote_pause_resume_fail(api, server):
    await register_node(api)
    await run(api, server, canary=1)
    allocs = await get(api, "/v1/job/web/allocations")
    report_healthy(server, allocs)
    schedule(server, (await (await api.post("/v1/job/web/evaluate", json={})).json())["EvalID"])
    await run(api, server, env="v2", canary=1)
    d = await get(api, "/v1/job/web/deployment")
    assert d["JobVersion"] == 1
    assert d["StatusDescription"] == "Deployment is running but requires manual promotion"
    resp = await api.put(f"/v1/deployment/promote/{d['ID']}", json={"All": True})
    assert resp.status == 500 and 'Task group "web" has 0/1 healthy allocations' in await resp.text()
    canaries = [a for a in await get(api, f"/v1/deployment/allocations/{d['ID']}")]
    assert len(canaries) == 1
    report_healthy(server, canaries)
    resp = await api.put(f"/v1/deployment/pause/{d['ID']}", json={"Pause": True})
    assert resp.status == 200
    assert (await get(api, f"/v1/deployment/{d['ID']}"))["Status"] == "paused"
    resp = await api.put(f"/v1/deployment/pause/{d['ID']}", json={"Pause": False})
    body = await resp.json()
    assert body["EvalID"] and body["DeploymentModifyIndex"] > 0
    got = await get(api, f"/v1/deployment/{d['ID']}")
    assert got["Status"] == "running"
    assert got["StatusDescription"] == "Deployment is running but requires manual promotion"
    resp = await api.put("/v1/job/web/promote", json={"All": True})
    assert resp.status == 200, await resp.text()
    assert (await get(api, f"/v1/deployment/{d['ID']}"))["TaskGroups"]["web"]["Promoted"] is True
    resp = await api.put(f"/v1/deployment/unblock/{d['ID']}")
    assert resp.status == 500 and await resp.text() == "can't unblock running deployment"
    resp = await api.put(f"/v1/deployment/fail/{d['ID']}")
    assert resp.status == 200
    got = await get(api, f"/v1/deployment/{d['ID']}")
    assert got["Status"] == "failed" and got["StatusDescription"] == "Deployment marked as failed"
    for path, msg in (("fail", "can't fail terminal deployment"), ("promote", "can't promote terminal deployment")):
        resp = await api.put(f"/v1/deployment/{path}/{d['ID']}", json={})
        assert resp.status == 500 and await resp.text() == msg


async def test_fail_with_auto_revert_registers_stable_version(api, server):
    await register_node(api)
    await run(api, server, auto_revert=True)
    report_healthy(server, await get(api, "/v1/job/web/allocations"))
    schedule(server, (await (await api.post("/v1/job/web/evaluate", json={})).json())["EvalID"])
    assert (await get(api, "/v1/job/web"))["Stable"] is True
    await run(api, server, env="v2", auto_revert=True)
    d = await get(api, "/v1/job/web/deployment")
    body = await (await api.put(f"/v1/deployment/fail/{d['ID']}")).json()
    assert body["RevertedJobVersion"] == 2
    got = await get(api, f"/v1/deployment/{d['ID']}")
    assert got["StatusDescription"] == "Deployment marked as failed - rolling back to job version 0"
    job = await get(api, "/v1/job/web")
    assert job["Version"] == 2 and job["TaskGroups"][0]["Tasks"][0]["Env"] == {"V": "v1"}


async def test_allocation_health_route(api, server):
    await register_node(api)
    await run(api, server)
    d = await get(api, "/v1/job/web/deployment")
    allocs = await get(api, f"/v1/deployment/allocations/{d['ID']}")
    resp = await api.put(f"/v1/deployment/allocation-health/{d['ID']}",
                         json={"HealthyAllocationIDs": [allocs[0]["ID"]], "UnhealthyAllocationIDs": [allocs[1]["ID"]]})
    assert resp.status == 200, await resp.text()
    state = (await get(api, f"/v1/deployment/{d['ID']}"))["TaskGroups"]["web"]
    assert state["HealthyAllocs"] == 1 and state["UnhealthyAllocs"] == 1
    resp = await api.put(f"/v1/deployment/allocation-health/{d['ID']}", json={})
    assert resp.status == 400


async def test_gc_of_terminal_deployments(api, server):
    await register_node(api)
    await run(api, server)
    d = await get(api, "/v1/job/web/deployment")
    await api.put(f"/v1/deployment/fail/{d['ID']}")
    now = server.now_ns()
    snap = server.state.snapshot()
    assert find_garbage(snap, now + 59 * 60 * SECOND, GCThresholds()).deployment_ids == []
    # allocs of the deployment still run: kept
    assert find_garbage(snap, now + 2 * 3600 * SECOND, GCThresholds()).deployment_ids == []
    await api.delete("/v1/job/web")
    for a in await get(api, "/v1/job/web/allocations"):
        server.state.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a["ID"], client_status="complete")]))
    assert find_garbage(server.state.snapshot(), now + 2 * 3600 * SECOND, GCThresholds()).deployment_ids == [d["ID"]]
    collect_garbage(server, FORCE)
    assert await get(api, "/v1/deployments") == []


async def test_purging_job_deletes_its_deployments(api, server):
    await register(api)
    await register_node(api)
    await run(api, server)
    assert len(await get(api, "/v1/deployments")) == 1
    await api.delete("/v1/job/web?purge=true")
    assert await get(api, "/v1/deployments") == []


async def test_deployment_events(api, server):
    from yurt.server.events import events_for
    from yurt.state.commands import DeploymentStatusSet

    await register_node(api)
    await run(api, server)
    d = await get(api, "/v1/job/web/deployment")
    cmd = DeploymentStatusSet(deployment_id=d["ID"], status="paused", status_description="Deployment is paused")
    index = server.state.apply(cmd)
    events = [e for e in events_for(server.state.snapshot(), index, cmd) if e.topic == "Deployment"]
    assert [(e.type, e.key) for e in events] == [("DeploymentStatusUpdate", d["ID"])]
