"""Job routes: register, read, list stubs, errors, blocking queries, namespaces."""

import asyncio
import json

from api_helpers import job_json, register


async def test_register_job_creates_eval_and_job(api, server):
    out = await register(api)
    assert set(out) >= {"EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index",
                        "KnownLeader", "LastContact"}
    assert out["EvalID"] and out["EvalCreateIndex"] == out["Index"]
    resp = await api.get(f"/v1/evaluation/{out['EvalID']}")
    assert resp.status == 200
    ev = await resp.json()
    assert ev["TriggeredBy"] == "job-register" and ev["JobID"] == "web"
    resp = await api.get("/v1/job/web")
    job = await resp.json()
    assert job["ID"] == "web" and job["JobModifyIndex"] == out["JobModifyIndex"]
    assert int(resp.headers["X-Nomad-Index"]) >= out["Index"]
    assert resp.headers["X-Nomad-KnownLeader"] == "true"
    evals = await (await api.get("/v1/job/web/evaluations")).json()
    assert out["EvalID"] in [e["ID"] for e in evals]


async def test_job_list_stub_shape(api):
    await register(api)
    stubs = await (await api.get("/v1/jobs")).json()
    assert len(stubs) == 1
    stub = stubs[0]
    for key in ("ID", "Name", "Namespace", "Type", "Priority", "Status", "JobSummary",
                "CreateIndex", "ModifyIndex", "JobModifyIndex", "SubmitTime", "Periodic", "Stop"):
        assert key in stub, key
    assert "TaskGroups" not in stub
    assert stub["JobSummary"]["JobID"] == "web"


async def test_not_found_texts(api):
    cases = {
        "/v1/job/nope": "job not found",
        "/v1/allocation/00000000-0000-0000-0000-000000000000": "alloc not found",
        "/v1/evaluation/00000000-0000-0000-0000-000000000000": "eval not found",
        "/v1/node/00000000-0000-0000-0000-000000000000": "node not found",
    }
    for path, text in cases.items():
        resp = await api.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/plain"
        assert (await resp.text()) == text


async def test_invalid_job_is_400_with_messages(api):
    data = job_json()
    data["TaskGroups"] = []
    resp = await api.put("/v1/jobs", json={"Job": data})
    assert resp.status == 400
    text = await resp.text()
    assert "error" in text and "task group" in text.lower()
    assert (await api.get("/v1/job/web")).status == 404


async def test_missing_job_and_id_mismatch(api):
    resp = await api.put("/v1/jobs", json={})
    assert resp.status == 400 and await resp.text() == "Job must be specified"
    resp = await api.put("/v1/jobs", json={"Job": {"Name": "x"}})
    assert resp.status == 400 and await resp.text() == "Job ID hasn't been provided"
    resp = await api.put("/v1/job/other", json={"Job": job_json("web")})
    assert resp.status == 400 and await resp.text() == "Job ID does not match name"


async def test_enforce_index(api):
    resp = await api.put("/v1/jobs", json={"Job": job_json(), "EnforceIndex": True, "JobModifyIndex": 5})
    assert resp.status == 409
    assert "job does not exist" in await resp.text()
    first = await register(api)
    resp = await api.put("/v1/jobs", json={"Job": job_json(), "EnforceIndex": True, "JobModifyIndex": 999})
    assert resp.status == 409 and "conflicting job modify index" in await resp.text()
    resp = await api.put("/v1/jobs", json={"Job": job_json(), "EnforceIndex": True,
                                           "JobModifyIndex": first["JobModifyIndex"]})
    assert resp.status == 200, await resp.text()


async def test_null_fields_take_defaults(api):
    data = job_json()
    data["Priority"] = None
    data["Meta"] = None
    data["TaskGroups"][0]["Count"] = None
    resp = await api.put("/v1/jobs", json={"Job": data, "EnforceIndex": None})
    assert resp.status == 200, await resp.text()
    job = await (await api.get("/v1/job/web")).json()
    assert job["Priority"] == 50 and job["TaskGroups"][0]["Count"] == 1


async def test_deregister_and_purge(api):
    await register(api)
    resp = await api.delete("/v1/job/web")
    out = await resp.json()
    assert resp.status == 200 and out["EvalID"]
    job = await (await api.get("/v1/job/web")).json()
    assert job["Stop"] is True
    resp = await api.delete("/v1/job/web?purge=true")
    assert resp.status == 200
    assert (await api.get("/v1/job/web")).status == 404
    assert (await api.delete("/v1/job/web")).status == 404


async def test_summary_versions_evaluate(api):
    await register(api)
    summary = await (await api.get("/v1/job/web/summary")).json()
    assert summary["JobID"] == "web" and "web" in summary["Summary"] or summary["Summary"]
    versions = await (await api.get("/v1/job/web/versions")).json()
    assert [v["Version"] for v in versions["Versions"]] == [0]
    out = await (await api.post("/v1/job/web/evaluate", json={})).json()
    ev = await (await api.get(f"/v1/evaluation/{out['EvalID']}")).json()
    assert ev["JobID"] == "web"


async def test_blocking_query_wakes_on_write(api):
    first = await api.get("/v1/jobs")
    index = int(first.headers["X-Nomad-Index"])

    async def later():
        await asyncio.sleep(0.2)
        await register(api)

    writer = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await api.get(f"/v1/jobs?index={index}&wait=10s")
    await writer
    assert loop.time() - start < 5
    assert int(resp.headers["X-Nomad-Index"]) > index
    assert [j["ID"] for j in await resp.json()] == ["web"]


async def test_blocking_query_times_out_without_change(api):
    await register(api)
    resp = await api.get("/v1/jobs")
    index = int(resp.headers["X-Nomad-Index"])
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await api.get(f"/v1/jobs?index={index}&wait=200ms")
    elapsed = loop.time() - start
    assert 0.15 <= elapsed < 3
    assert int(resp.headers["X-Nomad-Index"]) == index


async def test_prefix_and_all_namespaces(api):
    await register(api, "web-a")
    await register(api, "web-b")
    await register(api, "db", namespace="other")
    ids = [j["ID"] for j in await (await api.get("/v1/jobs")).json()]
    assert ids == ["web-a", "web-b"]
    ids = [j["ID"] for j in await (await api.get("/v1/jobs?namespace=*")).json()]
    assert sorted(ids) == ["db", "web-a", "web-b"]
    ids = [j["ID"] for j in await (await api.get("/v1/jobs?prefix=web-b")).json()]
    assert ids == ["web-b"]
    ids = [j["ID"] for j in await (await api.get("/v1/jobs?namespace=other")).json()]
    assert ids == ["db"]
    assert (await api.get("/v1/job/db")).status == 404
    assert (await api.get("/v1/job/db?namespace=other")).status == 200
    evals = await (await api.get("/v1/evaluations?namespace=*")).json()
    assert len(evals) == 3


async def test_pretty_output(api):
    await register(api)
    text = await (await api.get("/v1/jobs?pretty")).text()
    assert "\n    " in text
    assert json.loads(text)[0]["ID"] == "web"


async def test_parse_and_validate_routes(api):
    hcl = 'job "p" {\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n' \
          '      config { command = "/bin/true" }\n    }\n  }\n}\n'
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": hcl, "Canonicalize": True})
    assert resp.status == 200, await resp.text()
    job = await resp.json()
    assert job["ID"] == "p" and job["TaskGroups"][0]["Count"] == 1
    resp = await api.post("/v1/jobs/parse", json={"JobHCL": 'job "p" { bogus = 1 }'})
    assert resp.status == 400
    resp = await api.put("/v1/validate/job", json={"Job": job_json()})
    out = await resp.json()
    assert out["ValidationErrors"] is None and out["Error"] == ""
    bad = job_json()
    bad["TaskGroups"] = []
    out = await (await api.put("/v1/validate/job", json={"Job": bad})).json()
    assert out["ValidationErrors"] and out["Error"]


async def test_periodic_and_parameterized_jobs_get_no_eval(api, server):
    from yurt.structs import ParameterizedJobConfig, PeriodicConfig, to_wire

    periodic = job_json("cron", type="batch")
    periodic["Periodic"] = to_wire(PeriodicConfig(spec="*/5 * * * *"))
    out = await (await api.put("/v1/jobs", json={"Job": periodic})).json()
    assert out["EvalID"] == "" and out["EvalCreateIndex"] == 0
    param = job_json("dispatchable", type="batch")
    param["ParameterizedJob"] = to_wire(ParameterizedJobConfig())
    out = await (await api.put("/v1/jobs", json={"Job": param})).json()
    assert out["EvalID"] == ""
    assert server.state.snapshot().evals(None) == []
    resp = await api.post("/v1/job/cron/evaluate")
    assert resp.status == 400 and await resp.text() == "can't evaluate periodic job"
