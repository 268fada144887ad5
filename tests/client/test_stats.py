"""`/v1/client/allocation/:id/stats` and `/v1/client/stats` with real figures."""

import asyncio
import os

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fakeserver import make_alloc, raw_task

from yurt.client.http import client_routes
from yurt.client.stats import CpuSampler, host_stats, resource_usage
from yurt.drivers.exec.cgroups import TaskCgroup


def test_cpu_percent_between_samples():
    sampler = CpuSampler()
    assert sampler.percent("t", cpu_seconds=1.0, started_at=100.0, now=104.0) == 25.0  # since start
    assert sampler.percent("t", cpu_seconds=3.0, started_at=100.0, now=105.0) == 200.0  # two cores busy
    assert sampler.percent("t", cpu_seconds=3.0, started_at=100.0, now=106.0) == 0.0
    sampler.forget_except(set())
    assert sampler.percent("t", cpu_seconds=3.5, started_at=105.0, now=106.0) == 350.0


def test_cgroup_memory_stats_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.current").write_text("1048576\n")
    (v2 / "memory.peak").write_text("2097152\n")
    (v2 / "memory.stat").write_text("anon 4096\nfile 8192\n")
    figures, measured = TaskCgroup(2, {"unified": str(v2)}).memory_stats()
    assert figures == {"Usage": 1 << 20, "MaxUsage": 2 << 20, "Cache": 8192}
    assert sorted(measured) == ["Cache", "Max Usage", "Usage"]
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.usage_in_bytes").write_text("300\n")
    (v1 / "memory.max_usage_in_bytes").write_text("500\n")
    (v1 / "memory.stat").write_text("cache 100\nrss 200\n")
    figures, _ = TaskCgroup(1, {"memory": str(v1), "cpu": str(tmp_path)}).memory_stats()
    assert figures == {"Usage": 300, "MaxUsage": 500, "Cache": 100}


def test_resource_usage_of_this_process_with_a_cgroup(tmp_path):
    (tmp_path / "memory.current").write_text("123456\n")
    usage = resource_usage([os.getpid()], total_compute=4000, cgroup=TaskCgroup(2, {"unified": str(tmp_path)}),
                           key="self")
    mem = usage["MemoryStats"]
    assert mem["RSS"] > 1 << 20 and mem["Usage"] == 123456
    assert set(mem["Measured"]) == {"RSS", "Swap", "Usage"}
    assert usage["CpuStats"]["Measured"] == ["System Mode", "User Mode", "Percent"]


def test_host_stats_figures(tmp_path):
    stats = host_stats(str(tmp_path), total_compute=8000)
    assert stats["Memory"]["Total"] > stats["Memory"]["Used"] > 0
    assert stats["CPU"] and all(0 <= c["Idle"] <= 100 for c in stats["CPU"])
    cores = len(stats["CPU"])
    expected = sum(c["Total"] for c in stats["CPU"]) / 100 * 8000 / cores
    assert abs(stats["CPUTicksConsumed"] - expected) < 1e-6
    alloc_dir = stats["AllocDirStats"]
    assert alloc_dir["Size"] > 0 and 0 < alloc_dir["InodesUsedPercent"] < 100
    assert stats["Uptime"] > 0


async def test_alloc_stats_measure_a_busy_task(server, agent):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("burn", "while :; do :; done"), raw_task("idle", "exec sleep 30")],
                       job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    app = web.Application()
    app.add_routes(client_routes(a))
    async with TestClient(TestServer(app)) as client:
        await (await client.get(f"/v1/client/allocation/{alloc.id}/stats")).json()
        await asyncio.sleep(0.5)
        stats = await (await client.get(f"/v1/client/allocation/{alloc.id}/stats")).json()
        burn = stats["Tasks"]["burn"]["ResourceUsage"]
        idle = stats["Tasks"]["idle"]["ResourceUsage"]
        assert burn["CpuStats"]["Percent"] > 20, burn
        assert burn["CpuStats"]["TotalTicks"] > 0 and burn["CpuStats"]["UserMode"] > 0
        assert idle["CpuStats"]["Percent"] < burn["CpuStats"]["Percent"]
        assert burn["MemoryStats"]["RSS"] > 0 and idle["MemoryStats"]["RSS"] > 0
        total = stats["ResourceUsage"]
        assert total["MemoryStats"]["RSS"] == burn["MemoryStats"]["RSS"] + idle["MemoryStats"]["RSS"]
        assert total["CpuStats"]["Percent"] == pytest.approx(burn["CpuStats"]["Percent"] + idle["CpuStats"]["Percent"])
        only = await (await client.get(f"/v1/client/allocation/{alloc.id}/stats", params={"task": "idle"})).json()
        assert list(only["Tasks"]) == ["idle"]
        host = await (await client.get("/v1/client/stats")).json()
        assert host["CPUTicksConsumed"] > 0 and host["DiskStats"]
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete")
