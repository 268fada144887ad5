"""Dispatch, periodic force, job stability and scale status routes."""

import base64
from urllib.parse import quote

import pytest
from api_helpers import job_json, register

from yurt.structs import to_wire
from yurt.testing.mock import mock_batch_job


def param_job(job_id="proc", payload="optional", required=("input",), optional=("mode",)):
    job = mock_batch_job(id=job_id)
    data = to_wire(job)
    for key in ("Status", "CreateIndex", "ModifyIndex", "JobModifyIndex", "Version", "SubmitTime"):
        data.pop(key, None)
    data["ParameterizedJob"] = {"Payload": payload, "MetaRequired": list(required), "MetaOptional": list(optional)}
    return data


async def put_job(api, data):
    resp = await api.put("/v1/jobs", json={"Job": data})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def dispatch(api, job_id="proc", expect=200, query="", **body):
    resp = await api.put(f"/v1/job/{job_id}/dispatch{query}", json=body)
    text = await resp.text()
    assert resp.status == expect, text
    return await resp.json() if expect == 200 else text


async def test_dispatch_creates_child_with_meta_payload_and_eval(api, server):
    out = await put_job(api, param_job())
    assert out["EvalID"] == ""  # the template itself is not scheduled
    payload = b"hello payload\n"
    got = await dispatch(api, Payload=base64.b64encode(payload).decode(), Meta={"input": "a.txt"})
    child_id = got["DispatchedJobID"]
    prefix, _, rest = child_id.partition("/dispatch-")
    unix, rand = rest.split("-")
    assert prefix == "proc" and int(unix) == int(server.clock.now()) and len(rand) == 8
    int(rand, 16)
    assert got["EvalID"] and got["EvalCreateIndex"] == got["JobCreateIndex"] == got["Index"]
    resp = await api.get(f"/v1/job/{quote(child_id, safe='')}")
    assert resp.status == 200, await resp.text()
    child = await resp.json()
    assert child["ParentID"] == "proc" and child["Dispatched"] is True and child["Name"] == child_id
    assert base64.b64decode(child["Payload"]) == payload
    assert child["Meta"] == {"owner": "armon", "input": "a.txt"}
    ev = await (await api.get(f"/v1/evaluation/{got['EvalID']}")).json()
    assert ev["JobID"] == child_id and ev["TriggeredBy"] == "job-register"
    summary = await (await api.get("/v1/job/proc/summary")).json()
    assert summary["Children"]["Pending"] == 1


async def test_dispatch_id_prefix_template_and_priority(api):
    await put_job(api, param_job())
    got = await dispatch(api, Meta={"input": "x"}, IdPrefixTemplate="nightly", Priority=70)
    assert got["DispatchedJobID"].startswith("proc/dispatch-nightly-")
    resp = await api.get(f"/v1/job/{quote(got['DispatchedJobID'], safe='')}")
    assert (await resp.json())["Priority"] == 70


async def test_idempotency_token_returns_the_existing_child(api, server):
    await put_job(api, param_job())
    first = await dispatch(api, query="?idempotency_token=tok-1", Meta={"input": "x"})
    again = await dispatch(api, query="?idempotency_token=tok-1", Meta={"input": "x"})
    assert again["DispatchedJobID"] == first["DispatchedJobID"] and again["EvalID"] == ""
    other = await dispatch(api, query="?idempotency_token=tok-2", Meta={"input": "x"})
    assert other["DispatchedJobID"] != first["DispatchedJobID"]
    kids = [j for j in server.state.snapshot().jobs("default") if j.parent_id == "proc"]
    assert len(kids) == 2


@pytest.mark.parametrize("payload_rule, body, message", [
    ("required", {"Meta": {"input": "x"}}, "Payload is not provided but required by parameterized job"),
    ("forbidden", {"Meta": {"input": "x"}, "Payload": base64.b64encode(b"x").decode()},
     "Payload provided but forbidden by parameterized job"),
    ("optional", {"Meta": {"input": "x"}, "Payload": base64.b64encode(b"x" * (16 * 1024 + 1)).decode()},
     "Payload exceeds maximum size; 16385 > 16384"),
    ("optional", {"Meta": {"input": "x", "zz": "1", "aa": "2"}},
     "Dispatch request included unpermitted metadata keys: [aa zz]"),
    ("optional", {"Meta": {"mode": "fast"}}, "Dispatch did not provide required meta keys: [input]"),
    ("optional", {"Meta": {"input": "x"}, "Priority": 101}, "dispatch job priority must be between [1, 100]"),
])
async def test_dispatch_validation_errors_change_nothing(api, server, payload_rule, body, message):
    await put_job(api, param_job(payload=payload_rule))
    before = server.state.latest_index
    assert await dispatch(api, expect=400, **body) == message
    assert server.state.latest_index == before


async def test_dispatch_of_missing_plain_or_stopped_job(api):
    assert await dispatch(api, job_id="nope", expect=404) == "parameterized job not found"
    await register(api, "web")
    assert await dispatch(api, job_id="web", expect=400) == 'Specified job "web" is not a parameterized job'
    await put_job(api, param_job())
    assert (await api.delete("/v1/job/proc")).status == 200
    assert await dispatch(api, expect=400, Meta={"input": "x"}) == 'Specified job "proc" is stopped'


async def test_dispatch_rejects_bad_base64(api):
    await put_job(api, param_job())
    text = await dispatch(api, expect=400, Meta={"input": "x"}, Payload="not base64!")
    assert "base64" in text


async def test_periodic_force_route(api, server):
    data = job_json("cron", type="batch")
    data["Periodic"] = {"Enabled": True, "Spec": "0 0 * * *", "SpecType": "cron", "TimeZone": "UTC"}
    data["TaskGroups"][0]["Tasks"][0]["Driver"] = "mock_driver"
    await put_job(api, data)
    resp = await api.put("/v1/job/cron/periodic/force")
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    ev = await (await api.get(f"/v1/evaluation/{out['EvalID']}")).json()
    assert ev["JobID"] == f"cron/periodic-{int(server.clock.now())}" and ev["TriggeredBy"] == "periodic-job"
    assert out["EvalCreateIndex"] == out["Index"] > 0
    resp = await api.put("/v1/job/missing/periodic/force")
    assert resp.status == 404 and await resp.text() == "job not found"
    await register(api, "web")
    resp = await api.put("/v1/job/web/periodic/force")
    assert resp.status == 400 and await resp.text() == "can't force launch non-periodic job"


async def test_stable_route_marks_a_version(api, server):
    await register(api, "web")
    resp = await api.put("/v1/job/web/stable", json={"JobID": "web", "JobVersion": 0, "Stable": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["Index"] > 0
    assert server.state.snapshot().job_by_id("default", "web").stable is True
    resp = await api.put("/v1/job/web/stable", json={"JobID": "web", "JobVersion": 7, "Stable": True})
    assert resp.status == 404
    resp = await api.put("/v1/job/web/stable", json={"JobID": "other", "JobVersion": 0})
    assert resp.status == 400 and await resp.text() == "Job ID does not match"


async def test_scale_status_route(api):
    await register(api, "web")
    resp = await api.get("/v1/job/web/scale")
    assert resp.status == 200, await resp.text()
    status = await resp.json()
    assert status["JobID"] == "web" and status["JobStopped"] is False
    assert status["TaskGroups"]["web"]["Desired"] == 10 and status["TaskGroups"]["web"]["Placed"] == 0
    assert (await api.get("/v1/job/nope/scale")).status == 404


async def scale(api, job_id="web", expect=200, **body):
    resp = await api.put(f"/v1/job/{job_id}/scale", json=body)
    text = await resp.text()
    assert resp.status == expect, text
    return await resp.json() if expect == 200 else text


async def test_scale_makes_a_version_a_scaling_eval_and_an_event(api, server):
    await register(api, "web")
    out = await scale(api, Count=3, Target={"Group": "web"}, Message="by hand")
    ev = await (await api.get(f"/v1/evaluation/{out['EvalID']}")).json()
    assert ev["TriggeredBy"] == "job-scaling"
    job = await (await api.get("/v1/job/web")).json()
    assert job["Version"] == 1 and job["TaskGroups"][0]["Count"] == 3
    # a message-only event changes no version
    await scale(api, Target={"Group": "web"}, Message="note", Error=True)
    status = await (await api.get("/v1/job/web/scale")).json()
    events = status["TaskGroups"]["web"]["Events"]
    assert [e["Message"] for e in events] == ["note", "by hand"]
    assert events[1]["Count"] == 3 and events[1]["PreviousCount"] == 10 and events[1]["EvalID"] == out["EvalID"]
    assert events[0]["Count"] is None and events[0]["Error"] is True
    assert (await (await api.get("/v1/job/web")).json())["Version"] == 1


async def test_scale_errors_change_nothing(api, server):
    await register(api, "web")
    before = server.state.latest_index
    assert await scale(api, expect=400, Count=1) == "missing task group name for scaling action"
    assert await scale(api, expect=400, Count=-1, Target={"Group": "web"}) == "scaling action count can't be negative"
    assert await scale(api, expect=400, Count=1, Target={"Group": "nope"}) == (
        'task group "nope" specified for scaling does not exist in job')
    assert await scale(api, expect=400, Count=1, Target={"Group": "web", "Job": "other"}) == (
        "job ID in payload did not match URL")
    assert await scale(api, expect=400, Count=1, Target={"Group": "web"}, JobModifyIndex=999) == (
        "Enforcing job modify index 999: job exists with conflicting job modify index: "
        f"{server.state.snapshot().job_by_id('default', 'web').job_modify_index}")
    assert await scale(api, job_id="nope", expect=404, Count=1, Target={"Group": "web"}) == 'job "nope" not found'
    assert server.state.latest_index == before


async def test_scale_respects_the_scaling_policy(api):
    data = job_json("web")
    data["TaskGroups"][0]["Scaling"] = {"Min": 2, "Max": 5, "Enabled": True, "Type": "horizontal"}
    data["TaskGroups"][0]["Count"] = 2
    resp = await api.put("/v1/jobs", json={"Job": data})
    assert resp.status == 200, await resp.text()
    assert await scale(api, expect=400, Count=6, Target={"Group": "web"}) == (
        "group count was greater than scaling policy maximum: 6 > 5")
    assert await scale(api, expect=400, Count=1, Target={"Group": "web"}) == (
        "group count was less than scaling policy minimum: 1 < 2")
    await scale(api, Count=4, Target={"Group": "web"})


async def test_child_job_ids_work_unescaped_in_paths(api):
    await put_job(api, param_job())
    child = (await dispatch(api, Meta={"input": "x"}))["DispatchedJobID"]
    resp = await api.get(f"/v1/job/{child}")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["ID"] == child
    summary = await (await api.get(f"/v1/job/{child}/summary")).json()
    assert summary["JobID"] == child
    assert (await api.get(f"/v1/job/{child}/allocations")).status == 200
    evals = await (await api.get(f"/v1/job/{child}/evaluations")).json()
    assert [e["JobID"] for e in evals] == [child]
    assert (await api.delete(f"/v1/job/{child}/summary")).status == 405
    assert (await api.get("/v1/job/proc/dispatch-0-00000000")).status == 404
    assert (await api.get("/v1/job/proc/nosuchthing/at/all")).status == 404
    resp = await api.delete(f"/v1/job/{child}")
    assert resp.status == 200, await resp.text()


async def test_dispatch_payload_route_takes_the_raw_body(api):
    await put_job(api, param_job(required=(), optional=()))
    resp = await api.put("/v1/job/proc/dispatch/payload", data=b"\x00raw bytes\xff")
    assert resp.status == 200, await resp.text()
    child = (await resp.json())["DispatchedJobID"]
    job = await (await api.get(f"/v1/job/{quote(child, safe='')}")).json()
    assert base64.b64decode(job["Payload"]) == b"\x00raw bytes\xff"


def test_python_nomad_dispatch_force_and_stable():
    """python-nomad's dispatch_job, periodic_job and stable_job against a listening server."""
    import asyncio

    import nomad
    from aiohttp import web

    from yurt.http import build_app
    from yurt.server import Server, ServerConfig

    def drive(port: int) -> dict:
        n = nomad.Nomad(host="127.0.0.1", port=port, timeout=10)
        n.job.register_job("proc", {"Job": param_job()})
        periodic = job_json("cron", type="batch")
        periodic["Periodic"] = {"Enabled": True, "Spec": "0 0 * * *", "SpecType": "cron", "TimeZone": "UTC"}
        n.job.register_job("cron", {"Job": periodic})
        out = {"dispatch": n.job.dispatch_job("proc", payload=base64.b64encode(b"p").decode(),
                                              meta={"input": "i"}, id_prefix_template="py")}
        out["child"] = n.job.get_job(out["dispatch"]["DispatchedJobID"])  # unescaped slash in the path
        out["force"] = n.job.periodic_job("cron")
        out["stable"] = n.job.stable_job("cron", 0, True)
        return out

    async def main():
        server = Server(ServerConfig(num_schedulers=0))
        await server.start()
        runner = web.AppRunner(build_app(server), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            return await asyncio.to_thread(drive, site._server.sockets[0].getsockname()[1])
        finally:
            await runner.cleanup()
            await server.stop()

    out = asyncio.run(main())
    assert out["dispatch"]["DispatchedJobID"].startswith("proc/dispatch-py-") and out["dispatch"]["EvalID"]
    assert out["child"]["Meta"]["input"] == "i" and base64.b64decode(out["child"]["Payload"]) == b"p"
    assert out["force"]["EvalID"] and out["stable"]["Index"] > 0


async def test_revert_route_texts_and_new_version(api, server):
    await register(api, "web")
    await register(api, "web", meta={"v": "2"})
    async def revert(expect, **body):
        resp = await api.put("/v1/job/web/revert", json={"JobID": "web", **body})
        assert resp.status == expect, await resp.text()
        return await resp.json() if expect == 200 else await resp.text()
    assert await revert(400, JobVersion=1) == "can't revert to current version"
    assert await revert(404, JobVersion=9) == 'job "web" in namespace "default" at version 9 not found'
    assert await revert(400, JobVersion=0, EnforcePriorVersion=0) == (
        "Current job has version 1; enforcing version 0")
    out = await revert(200, JobVersion=0, EnforcePriorVersion=1)
    job = await (await api.get("/v1/job/web")).json()
    assert job["Version"] == 2 and job["Meta"] == {"owner": "armon"} and out["EvalID"]
    resp = await api.put("/v1/job/nope/revert", json={"JobID": "nope", "JobVersion": 0})
    assert resp.status == 404 and await resp.text() == 'job "nope" not found'
