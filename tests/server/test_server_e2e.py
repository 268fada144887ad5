"""In-process end to end: Server + HTTP app + fake nodes registered through the internal
route; the real scheduler places, heartbeats expire on a fake clock, state survives restarts."""

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from yurt.http import build_app
from yurt.server import FakeClock, Server, ServerConfig
from yurt.structs import to_wire
from yurt.testing.mock import mock_group, mock_job, mock_node


def config(**overrides) -> ServerConfig:
    values = dict(num_schedulers=1, min_heartbeat_ttl=5.0, heartbeat_grace=5.0,
                  failover_heartbeat_ttl=30.0, alloc_update_batch_window=0.01)
    values.update(overrides)
    return ServerConfig(**values)


async def wait_until(predicate, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def job_body(job_id="web", count=3):
    job = mock_job(id=job_id, name=job_id, task_groups=[mock_group(count=count)])
    data = to_wire(job)
    for key in ("Status", "CreateIndex", "ModifyIndex", "JobModifyIndex"):
        data.pop(key)
    return {"Job": data}


class Cluster:
    def __init__(self, server: Server, api: TestClient, clock: FakeClock):
        self.server, self.api, self.clock = server, api, clock

    async def add_node(self):
        node = mock_node()
        data = to_wire(node)
        resp = await self.api.put("/v1/internal/node/register", json={"Node": data})
        assert resp.status == 200, await resp.text()
        return node

    def live_allocs(self, job_id="web"):
        allocs = self.server.state.snapshot().allocs_by_job("default", job_id)
        return [a for a in allocs if not a.terminal]


@pytest.fixture
async def cluster():
    clock = FakeClock()
    server = Server(config(), clock=clock)
    await server.start()
    api = TestClient(TestServer(build_app(server)))
    await api.start_server()
    yield Cluster(server, api, clock)
    await api.close()
    await server.stop()


async def test_registered_job_is_placed_on_the_node(cluster):
    node = await cluster.add_node()
    resp = await cluster.api.put("/v1/jobs", json=job_body(count=3))
    out = await resp.json()
    allocs = await wait_until(lambda: len(cluster.live_allocs()) == 3 and cluster.live_allocs())
    assert {a.node_id for a in allocs} == {node.id}
    ev = await wait_until(lambda: (e := cluster.server.state.snapshot().eval_by_id(out["EvalID"]))
                          and e.status == "complete" and e)
    assert ev.status == "complete"
    # the client's view: blocking query on its allocations, with the job inside
    listed = await (await cluster.api.get(f"/v1/node/{node.id}/allocations")).json()
    assert len(listed) == 3 and all(a["Job"]["ID"] == "web" for a in listed)


async def test_job_waits_blocked_until_a_node_registers(cluster):
    await cluster.api.put("/v1/jobs", json=job_body(count=2))
    await wait_until(lambda: cluster.server.blocked.has_job("default", "web"))
    assert cluster.live_allocs() == []
    node = await cluster.add_node()
    allocs = await wait_until(lambda: len(cluster.live_allocs()) == 2 and cluster.live_allocs())
    assert {a.node_id for a in allocs} == {node.id}


async def test_missed_heartbeat_marks_node_down_and_allocs_lost(cluster):
    first = await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=2))
    await wait_until(lambda: len(cluster.live_allocs()) == 2)
    cluster.clock.advance(9.0)  # TTL >= 5s (+ stagger up to 5s) + 5s grace: not yet
    cluster.server.run_timers()
    assert cluster.server.state.snapshot().node_by_id(first.id).status == "ready"
    cluster.clock.advance(30.0)
    cluster.server.run_timers()
    assert cluster.server.state.snapshot().node_by_id(first.id).status == "down"
    evals = cluster.server.state.snapshot().evals_by_job("default", "web")
    assert any(e.triggered_by == "node-update" and e.node_id == first.id for e in evals)

    def lost():
        allocs = cluster.server.state.snapshot().allocs_by_job("default", "web")
        return [a for a in allocs if a.node_id == first.id and a.client_status == "lost"]

    await wait_until(lambda: len(lost()) == 2)
    second = await cluster.add_node()
    replacements = await wait_until(lambda: len(cluster.live_allocs()) == 2 and cluster.live_allocs())
    assert {a.node_id for a in replacements} == {second.id}


async def test_heartbeat_keeps_node_alive(cluster):
    node = await cluster.add_node()
    for _ in range(5):
        cluster.clock.advance(4.0)
        resp = await cluster.api.put(f"/v1/internal/node/{node.id}/heartbeat", json={"Status": "ready"})
        assert resp.status == 200
        cluster.server.run_timers()
    assert cluster.server.state.snapshot().node_by_id(node.id).status == "ready"


async def test_failed_alloc_gets_an_eval_and_is_rescheduled(cluster):
    await cluster.add_node()
    await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=1))
    (alloc,) = await wait_until(lambda: len(cluster.live_allocs()) == 1 and cluster.live_allocs())
    resp = await cluster.api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": alloc.id, "ClientStatus": "failed", "ClientDescription": "task failed"}]})
    assert resp.status == 200
    evals = cluster.server.state.snapshot().evals_by_job("default", "web")
    assert any(e.triggered_by == "alloc-failure" for e in evals)
    # the mock job reschedules after a 5s delay: a follow-up eval waits on the (fake) clock
    cluster.clock.advance(6.0)
    replacement = await wait_until(
        lambda: (cluster.server.run_timers() or True)
        and [a for a in cluster.live_allocs() if a.previous_allocation == alloc.id])
    assert replacement[0].client_status == "pending"


async def test_update_of_an_unknown_alloc_does_not_drop_the_rest_of_the_batch(cluster):
    """Nomad's Node.UpdateAlloc skips allocs it no longer has (garbage-collected, purged):
    a client's batch that carries one of those still lands for the others."""
    await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=1))
    (alloc,) = await wait_until(lambda: len(cluster.live_allocs()) == 1 and cluster.live_allocs())
    resp = await cluster.api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": "00000000-0000-0000-0000-000000000000", "ClientStatus": "complete"},
        {"ID": alloc.id, "ClientStatus": "running"}]})
    assert resp.status == 200
    await wait_until(lambda: cluster.server.state.snapshot().alloc_by_id(alloc.id).client_status == "running")
    only_unknown = await cluster.api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": "00000000-0000-0000-0000-000000000000", "ClientStatus": "complete"}]})
    assert only_unknown.status == 200


async def test_restart_restores_pending_and_blocked_evals(tmp_path):
    clock = FakeClock()
    first = Server(config(num_schedulers=0, data_dir=str(tmp_path)), clock=clock)
    await first.start()
    api = TestClient(TestServer(build_app(first)))
    await api.start_server()
    out = await (await api.put("/v1/jobs", json=job_body("later", count=1))).json()
    await api.close()
    await first.stop()

    second = Server(config(data_dir=str(tmp_path)), clock=clock)
    await second.start()
    try:
        ev = await wait_until(lambda: (e := second.state.snapshot().eval_by_id(out["EvalID"]))
                              and e.status == "complete" and e)
        assert ev.blocked_eval  # no nodes: the job waits in a blocked eval
        await wait_until(lambda: second.blocked.has_job("default", "later"))
    finally:
        await second.stop()

    third = Server(config(data_dir=str(tmp_path)), clock=clock)
    await third.start()
    try:
        assert third.blocked.has_job("default", "later")
    finally:
        await third.stop()


async def test_drain_moves_allocs_and_completes(cluster):
    first = await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=2))
    await wait_until(lambda: len(cluster.live_allocs()) == 2)
    second = await cluster.add_node()
    resp = await cluster.api.post(f"/v1/node/{first.id}/drain",
                                  json={"DrainSpec": {"Deadline": 2 * 10**9}, "MarkEligible": False})
    assert resp.status == 200, await resp.text()
    # No client runs these allocs, so none is healthy: they move at the deadline (Nomad's drainer).
    cluster.clock.advance(3)
    moved = await wait_until(lambda: {a.node_id for a in cluster.live_allocs()} == {second.id}
                             and len(cluster.live_allocs()) == 2)
    assert moved
    node = await wait_until(lambda: (n := cluster.server.state.snapshot().node_by_id(first.id))
                            and n.drain_strategy is None and n)
    assert node.scheduling_eligibility == "ineligible"
    resp = await cluster.api.post(f"/v1/node/{first.id}/eligibility", json={"Eligibility": "eligible"})
    out = await resp.json()
    assert resp.status == 200 and out["NodeModifyIndex"] > 0
    assert cluster.server.state.snapshot().node_by_id(first.id).scheduling_eligibility == "eligible"


async def test_scale_and_revert(cluster):
    await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=1))
    await wait_until(lambda: len(cluster.live_allocs()) == 1)
    resp = await cluster.api.post("/v1/job/web/scale", json={"Count": 3, "Target": {"Group": "web"}})
    assert resp.status == 200, await resp.text()
    await wait_until(lambda: len(cluster.live_allocs()) == 3)
    resp = await cluster.api.post("/v1/job/web/scale", json={"Count": 3, "Target": {"Group": "nope"}})
    assert resp.status == 400 and "does not exist" in await resp.text()
    resp = await cluster.api.post("/v1/job/web/revert", json={"JobVersion": 0})
    assert resp.status == 200, await resp.text()
    await wait_until(lambda: len(cluster.live_allocs()) == 1)
    job = cluster.server.state.snapshot().job_by_id("default", "web")
    assert job.version == 2 and job.task_groups[0].count == 1
    resp = await cluster.api.post("/v1/job/web/revert", json={"JobVersion": 2})
    assert resp.status == 400 and await resp.text() == "can't revert to current version"


async def test_job_plan_is_a_dry_run_with_annotations_and_diff(cluster):
    resp = await cluster.api.post("/v1/job/web/plan", json={**job_body(count=2), "Diff": True})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["Diff"]["Type"] == "Added"
    assert out["FailedTGAllocs"]["web"]  # no nodes yet
    await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=2))
    await wait_until(lambda: len(cluster.live_allocs()) == 2)
    evals_before = len(cluster.server.state.snapshot().evals(None))

    out = await (await cluster.api.post("/v1/job/web/plan", json={**job_body(count=2), "Diff": True})).json()
    assert out["Diff"]["Type"] == "None"
    assert out["Annotations"]["DesiredTGUpdates"]["web"]["Ignore"] == 2
    assert out["JobModifyIndex"] == cluster.server.state.snapshot().job_by_id("default", "web").job_modify_index

    out = await (await cluster.api.post("/v1/job/web/plan", json={**job_body(count=5), "Diff": True})).json()
    assert out["Diff"]["Type"] == "Edited"
    (group,) = out["Diff"]["TaskGroups"]
    assert {"Type": "Edited", "Name": "Count", "Old": "2", "New": "5", "Annotations": None} in group["Fields"]
    assert group["Updates"]["create"] == 3
    assert out["FailedTGAllocs"] is None
    # nothing was committed
    assert len(cluster.live_allocs()) == 2
    assert len(cluster.server.state.snapshot().evals(None)) == evals_before
    assert cluster.server.state.snapshot().job_by_id("default", "web").task_groups[0].count == 2


async def test_system_gc_collects_stopped_jobs_and_old_evals(cluster):
    node = await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=1))
    (alloc,) = await wait_until(lambda: len(cluster.live_allocs()) == 1 and cluster.live_allocs())
    await cluster.api.delete("/v1/job/web")
    await wait_until(lambda: cluster.live_allocs() == [])
    # the client has not reported the stop yet: nothing is collected
    assert (await cluster.api.put("/v1/system/gc")).status == 200
    assert cluster.server.state.snapshot().alloc_by_id(alloc.id) is not None
    await cluster.api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": alloc.id, "ClientStatus": "complete"}]})
    await wait_until(lambda: cluster.server.state.snapshot().job_by_id("default", "web").status == "dead")
    assert (await cluster.api.put("/v1/system/gc")).status == 200
    snap = cluster.server.state.snapshot()
    assert snap.job_by_id("default", "web") is None
    assert snap.alloc_by_id(alloc.id) is None and snap.evals_by_job("default", "web") == []
    assert snap.node_by_id(node.id) is not None  # ready nodes stay


async def test_periodic_gc_respects_thresholds(cluster):
    from yurt.server.gc import GCThresholds, find_garbage

    await cluster.add_node()
    await cluster.api.put("/v1/jobs", json=job_body(count=1))
    (alloc,) = await wait_until(lambda: len(cluster.live_allocs()) == 1 and cluster.live_allocs())
    hour = 3601 * 10**9
    now = cluster.server.now_ns()
    # the eval that placed a live alloc is kept, however old
    assert find_garbage(cluster.server.state.snapshot(), now + hour, GCThresholds()).eval_ids == []
    await cluster.api.put("/v1/internal/allocs/update", json={"Allocs": [
        {"ID": alloc.id, "ClientStatus": "failed"}]})
    await wait_until(lambda: cluster.server.state.snapshot().alloc_by_id(alloc.id).client_status == "failed")
    snap = cluster.server.state.snapshot()
    assert find_garbage(snap, now, GCThresholds()).alloc_ids == []  # too young
    later = find_garbage(snap, now + hour, GCThresholds())
    assert alloc.eval_id in later.eval_ids and alloc.id in later.alloc_ids
