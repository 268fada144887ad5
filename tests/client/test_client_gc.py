"""Client GC of terminal alloc dirs (Nomad's AllocGarbageCollector) and its routes."""

import asyncio
import os

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fakeserver import make_alloc, raw_task

from yurt.client import gc as client_gc
from yurt.client.gc import DiskUsage, GCLimits, gc_reason, room_to_make
from yurt.client.http import client_routes

LIMITS = GCLimits(disk_usage_threshold=80, inode_usage_threshold=70, max_allocs=50)


def test_gc_reason_follows_nomads_thresholds():
    assert gc_reason(DiskUsage(80.0, 70.0), 50, LIMITS) == ""  # at the limits is fine
    assert gc_reason(DiskUsage(81.0, 10.0), 1, LIMITS) == "disk usage of 81 is over gc threshold of 80"
    assert gc_reason(DiskUsage(10.0, 71.0), 1, LIMITS) == "inode usage of 71 is over gc threshold of 70"
    assert gc_reason(DiskUsage(10.0, 10.0), 51, LIMITS) == "number of allocations (51) is over the limit (50)"


def test_room_to_make():
    assert room_to_make(48, 2, 50) == 0
    assert room_to_make(49, 3, 50) == 2
    assert room_to_make(0, 60, 50) == 10


async def _complete(server, a, n):
    allocs = []
    for i in range(n):
        alloc = make_alloc(a.node.id, [raw_task("t", f"echo {i}")])
        await server.add_alloc(alloc)
        await server.wait_status(alloc.id, "complete")
        allocs.append(alloc)
        await asyncio.sleep(0.01)  # distinct FinishedAt
    return allocs


def _dir(a, alloc):
    return os.path.join(a.config.alloc_dir, alloc.id)


async def test_new_allocs_make_room_over_gc_max_allocs(server, agent):
    a = await agent(gc_max_allocs=2, gc_interval=3600)
    allocs = await _complete(server, a, 4)
    await asyncio.sleep(0.2)
    assert [os.path.isdir(_dir(a, al)) for al in allocs] == [False, False, True, True]


async def test_periodic_pass_removes_oldest_terminal_allocs_over_max(server, agent, monkeypatch):
    a = await agent(gc_interval=3600)
    monkeypatch.setattr(client_gc, "disk_usage", lambda path: DiskUsage(1.0, 1.0))
    allocs = await _complete(server, a, 4)
    assert all(os.path.isdir(_dir(a, al)) for al in allocs)
    a.gc.limits = GCLimits(max_allocs=2)
    collected = await a.gc.keep_usage_below_threshold()
    assert collected == [allocs[0].id, allocs[1].id]  # oldest first, down to gc_max_allocs
    assert [os.path.isdir(_dir(a, al)) for al in allocs] == [False, False, True, True]
    assert a.alloc_runners[allocs[0].id].destroyed  # kept (destroyed) until the server forgets it
    assert a.state.tasks(allocs[0].id) == {}


async def test_disk_pressure_collects_until_below_threshold(server, agent, monkeypatch):
    a = await agent(gc_interval=3600)
    allocs = await _complete(server, a, 3)
    readings = iter([DiskUsage(95.0, 1.0), DiskUsage(85.0, 1.0), DiskUsage(50.0, 1.0)])
    monkeypatch.setattr(client_gc, "disk_usage", lambda path: next(readings))
    assert await a.gc.keep_usage_below_threshold() == [allocs[0].id, allocs[1].id]
    assert os.path.isdir(_dir(a, allocs[2]))


async def test_running_allocs_are_never_collected(server, agent, monkeypatch):
    a = await agent(gc_max_allocs=0, gc_interval=3600)
    monkeypatch.setattr(client_gc, "disk_usage", lambda path: DiskUsage(99.0, 99.0))
    alloc = make_alloc(a.node.id, [raw_task("t", "exec sleep 30")], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    assert await a.gc.keep_usage_below_threshold() == []
    assert await a.gc.collect(alloc.id) is False
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete")


async def test_gc_routes(server, agent, monkeypatch):
    a = await agent(gc_interval=3600)
    allocs = await _complete(server, a, 3)
    app = web.Application()
    app.add_routes(client_routes(a))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(f"/v1/client/allocation/{allocs[0].id}/gc")
        assert resp.status == 200
        assert not os.path.isdir(_dir(a, allocs[0]))
        resp = await client.put(f"/v1/client/allocation/{allocs[0].id}/gc")  # already collected
        assert resp.status == 404 and "Unknown allocation" in await resp.text()
        resp = await client.put("/v1/client/gc")
        assert resp.status == 200
        assert not any(os.path.isdir(_dir(a, al)) for al in allocs)
        resp = await client.get(f"/v1/client/fs/ls/{allocs[1].id}")
        assert resp.status == 404


async def test_server_forgetting_the_alloc_destroys_it(server, agent):
    a = await agent(gc_interval=3600)
    (alloc,) = await _complete(server, a, 1)
    server.allocs.pop(alloc.id)
    await server.bump()
    for _ in range(100):
        if alloc.id not in a.alloc_runners and not os.path.isdir(_dir(a, alloc)):
            break
        await asyncio.sleep(0.05)
    assert alloc.id not in a.alloc_runners and not os.path.isdir(_dir(a, alloc))
