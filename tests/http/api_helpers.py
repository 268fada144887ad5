"""Helpers shared by the HTTP tests: wire JSON for mock jobs and nodes, register calls."""

from yurt.structs import to_wire
from yurt.testing.mock import mock_job, mock_node


def job_json(job_id="web", **overrides):
    job = mock_job(id=job_id, name=job_id, **overrides)
    data = to_wire(job)
    for key in ("Status", "CreateIndex", "ModifyIndex", "JobModifyIndex", "Version", "SubmitTime"):
        data.pop(key, None)
    return data


async def register(api, job_id="web", **overrides):
    resp = await api.put("/v1/jobs", json={"Job": job_json(job_id, **overrides)})
    assert resp.status == 200, await resp.text()
    return await resp.json()


def node_json(node):
    data = to_wire(node)
    for key in ("CreateIndex", "ModifyIndex"):
        data.pop(key, None)
    return data


async def register_node(api, **overrides):
    node = mock_node(**overrides)
    resp = await api.put("/v1/internal/node/register", json={"Node": node_json(node)})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["Index"] > 0 and out["HeartbeatTTL"] > 0
    return node
