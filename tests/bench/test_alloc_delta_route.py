"""The delta form of the client's alloc watch (`GET /v1/internal/node/:id/allocs?delta=1`,
`yurt.http.alloc_delta`): the allocs changed since `index` in full, with the node's alloc
count, so a client sees every removal; and the simulated node speaking it."""

import asyncio
import os
import sys

from yurt.state.commands import AllocClientUpdate, AllocUpdate, EvalDelete, JobRegister, PlanApply
from yurt.structs import to_wire
from yurt.testing.mock import mock_alloc, mock_job, mock_node

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.fleet import sim_node_template  # noqa: E402
from bench.simnode import FleetCounters, SimNode  # noqa: E402


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
    from yurt.structs.base import evolve

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
    sim = SimNode(f"http://127.0.0.1:{api.server.port}", sim_node_template(), "sim-delta", FleetCounters())
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
