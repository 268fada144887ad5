"""The client's alloc watch as Nomad does it: a blocking map of {alloc ID: AllocModifyIndex}
per node (`GET /v1/internal/node/:id/allocs`), woken only by that node's allocs, and a pull
of full allocs by ID (`PUT /v1/internal/allocs/get`) that matches the public route."""

import asyncio

from yurt.state.commands import AllocClientUpdate, AllocUpdate, JobRegister, PlanApply
from yurt.structs import to_wire
from yurt.testing.mock import mock_alloc, mock_job, mock_node


async def _register_node(api):
    node = mock_node()
    resp = await api.put("/v1/internal/node/register", json={"Node": to_wire(node)})
    assert resp.status == 200, await resp.text()
    return node


def _place(server, placements):
    """Commit allocs on chosen nodes directly (no scheduler): [(node, count)]."""
    job = mock_job()
    server.state.apply(JobRegister(job=job, submit_time=1))
    job = server.state.snapshot().job_by_id(job.namespace, job.id)
    by_node = {node.id: [mock_alloc(job, node, index=i) for i in range(n)] for node, n in placements}
    server.state.apply(PlanApply(eval_id="e1", job=job, node_allocation=by_node, updated_at=1))
    return by_node


def _running(server, alloc):
    server.state.apply(AllocClientUpdate(allocs=[AllocUpdate(id=alloc.id, client_status="running")], updated_at=2))


async def test_node_watch_wakes_only_for_its_own_allocs(server, api):
    node_a, node_b = await _register_node(api), await _register_node(api)
    placed = _place(server, [(node_a, 1), (node_b, 2)])
    resp = await api.get(f"/v1/internal/node/{node_b.id}/allocs")
    versions = (await resp.json())["Allocs"]
    assert set(versions) == {a.id for a in placed[node_b.id]}
    index = int(resp.headers["X-Nomad-Index"])

    waiter = asyncio.create_task(api.get(f"/v1/internal/node/{node_b.id}/allocs",
                                          params={"index": str(index), "wait": "5s"}))
    await asyncio.sleep(0.1)
    _running(server, placed[node_a.id][0])  # another node's alloc changes
    await asyncio.sleep(0.3)
    assert not waiter.done(), "node B's watch woke for an alloc on node A"

    _running(server, placed[node_b.id][0])
    resp = await asyncio.wait_for(waiter, 5)
    assert int(resp.headers["X-Nomad-Index"]) > index
    # a client status update leaves AllocModifyIndex alone: nothing to pull again
    assert (await resp.json())["Allocs"] == versions


async def test_pull_returns_the_public_routes_allocs(server, api):
    node = await _register_node(api)
    placed = _place(server, [(node, 3)])
    ids = [a.id for a in placed[node.id]]
    resp = await api.put("/v1/internal/allocs/get", json={"AllocIDs": ids + ["no-such-alloc"]})
    assert resp.status == 200, await resp.text()
    pulled = {a["ID"]: a for a in await resp.json()}
    public = {a["ID"]: a for a in await (await api.get(f"/v1/node/{node.id}/allocations")).json()}
    assert set(pulled) == set(ids)
    assert pulled == public
    assert all(a["Job"]["ID"] == placed[node.id][0].job_id for a in pulled.values())


async def test_pull_rejects_a_body_without_ids(api):
    resp = await api.put("/v1/internal/allocs/get", json={"AllocIDs": "x"})
    assert resp.status == 400
    assert "AllocIDs" in await resp.text()


async def test_version_map_follows_alloc_modify_index(server, api):
    """The map is read from the state's per-node index: a status report keeps it (and its
    encoded answer), a scheduler update of an alloc moves that alloc's entry."""
    node = await _register_node(api)
    placed = _place(server, [(node, 2)])[node.id]
    url = f"/v1/internal/node/{node.id}/allocs"
    first = (await (await api.get(url)).json())["Allocs"]
    _running(server, placed[0])
    assert (await (await api.get(url)).json())["Allocs"] == first
    stored = server.state.snapshot().alloc_by_id(placed[1].id)
    index = server.state.apply(PlanApply(eval_id="e2", node_update={node.id: [stored]}, updated_at=3))
    after = (await (await api.get(url)).json())["Allocs"]
    assert after == {placed[0].id: first[placed[0].id], placed[1].id: index}
    pretty = (await (await api.get(url, params={"pretty": "1"})).json())["Allocs"]
    assert pretty == after
