"""The client-served routes against a real agent running raw_exec allocs."""

import asyncio
import base64
import json
import os

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fakeserver import make_alloc, raw_task

from yurt.client.http import client_routes
from yurt.structs.job import LogConfig


@pytest.fixture
async def http(agent):
    clients = []

    async def make(a):
        app = web.Application()
        app.add_routes(client_routes(a))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


def frames(body: bytes) -> list[dict]:
    decoder, text, out = json.JSONDecoder(), body.decode(), []
    pos = 0
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


async def run_alloc(server, a, tasks):
    alloc = make_alloc(a.node.id, tasks)
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")
    return alloc


async def test_fs_ls_stat_cat_readat(server, agent, http):
    a = await agent()
    alloc = await run_alloc(server, a, [raw_task("w", "echo hello > $NOMAD_ALLOC_DIR/data/out.txt")])
    client = await http(a)
    resp = await client.get(f"/v1/client/fs/ls/{alloc.id}", params={"path": "/"})
    names = {e["Name"]: e for e in await resp.json()}
    assert {"alloc", "w"} <= set(names) and names["alloc"]["IsDir"] and names["alloc"]["FileMode"].startswith("d")
    resp = await client.get(f"/v1/client/fs/stat/{alloc.id}", params={"path": "alloc/data/out.txt"})
    info = await resp.json()
    assert info["Name"] == "out.txt" and info["Size"] == 6 and info["ContentType"].startswith("text/plain")
    assert set(info) == {"Name", "IsDir", "Size", "FileMode", "ModTime", "ContentType"}
    resp = await client.get(f"/v1/client/fs/cat/{alloc.id}", params={"path": "alloc/data/out.txt"})
    assert await resp.text() == "hello\n"
    resp = await client.get(f"/v1/client/fs/readat/{alloc.id}", params={"path": "alloc/data/out.txt", "offset": 1, "limit": 3})
    assert await resp.text() == "ell"


async def test_fs_errors(server, agent, http):
    a = await agent()
    alloc = await run_alloc(server, a, [raw_task("w", "true")])
    client = await http(a)
    resp = await client.get("/v1/client/fs/ls/00000000-dead-beef-0000-000000000000")
    assert resp.status == 404 and (await resp.text()).startswith("Unknown allocation")
    assert resp.headers["Content-Type"].startswith("text/plain")
    resp = await client.get(f"/v1/client/fs/cat/{alloc.id}", params={"path": "../../etc/passwd"})
    assert resp.status == 400 and "escapes" in await resp.text()
    resp = await client.get(f"/v1/client/fs/cat/{alloc.id}", params={"path": "alloc"})
    assert resp.status == 400 and "is a directory" in await resp.text()
    resp = await client.get(f"/v1/client/fs/stat/{alloc.id}", params={"path": "nope"})
    assert resp.status == 404
    resp = await client.get(f"/v1/client/fs/logs/{alloc.id}", params={"task": "w", "type": "stdin"})
    assert resp.status == 400 and await resp.text() == "must provide log type (stdout/stderr)"
    resp = await client.get(f"/v1/client/fs/logs/{alloc.id}", params={"task": "zz", "type": "stdout"})
    assert resp.status == 404


async def test_logs_plain_and_framed_with_offsets(server, agent, http):
    a = await agent()
    alloc = await run_alloc(server, a, [raw_task("w", "printf 'line1\\nline2\\n'; printf oops >&2")])
    client = await http(a)
    url = f"/v1/client/fs/logs/{alloc.id}"
    resp = await client.get(url, params={"task": "w", "type": "stdout", "plain": "true"})
    assert await resp.text() == "line1\nline2\n"
    resp = await client.get(url, params={"task": "w", "type": "stderr", "plain": "true"})
    assert await resp.text() == "oops"
    resp = await client.get(url, params={"task": "w", "type": "stdout", "plain": "true", "origin": "end", "offset": 6})
    assert await resp.text() == "line2\n"
    resp = await client.get(url, params={"task": "w", "type": "stdout"})
    fs = [f for f in frames(await resp.read()) if f]
    assert b"".join(base64.b64decode(f["Data"]) for f in fs) == b"line1\nline2\n"
    assert fs[0]["File"] == "alloc/logs/w.stdout.0" and fs[-1]["Offset"] == 12


async def test_logs_span_rotated_files(server, agent, http):
    a = await agent()
    task = raw_task("w", "for i in 1 2 3 4 5; do echo $i; done", log_config=LogConfig(max_files=10, max_file_size_mb=1))
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")
    log_dir = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs")
    # split the log by hand into three rotated files, as the rotator would have
    os.rename(f"{log_dir}/w.stdout.0", f"{log_dir}/w.stdout.1")
    content = open(f"{log_dir}/w.stdout.1").read()
    open(f"{log_dir}/w.stdout.1", "w").write(content[:4])
    open(f"{log_dir}/w.stdout.2", "w").write(content[4:8])
    open(f"{log_dir}/w.stdout.3", "w").write(content[8:])
    client = await http(a)
    url = f"/v1/client/fs/logs/{alloc.id}"
    resp = await client.get(url, params={"task": "w", "type": "stdout", "plain": "true"})
    assert await resp.text() == "1\n2\n3\n4\n5\n"
    resp = await client.get(url, params={"task": "w", "type": "stdout", "plain": "true", "origin": "end", "offset": 5})
    assert await resp.text() == "\n4\n5\n"


async def test_logs_follow_streams_new_output_across_rotation(server, agent, http):
    a = await agent()
    marker = os.path.join(a.config.data_dir, "more")
    script = f"echo first; while [ ! -e {marker} ]; do sleep 0.05; done; echo second"
    alloc = make_alloc(a.node.id, [raw_task("w", script)], job_type="batch")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    client = await http(a)
    resp = await client.get(f"/v1/client/fs/logs/{alloc.id}", params={"task": "w", "type": "stdout", "follow": "true", "plain": "true"})
    got = b""
    while b"first\n" not in got:
        got += await asyncio.wait_for(resp.content.read(100), 5)
    log_dir = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs")
    open(f"{log_dir}/w.stdout.1", "w").write("rotated\n")  # a newer file appears
    while b"rotated\n" not in got:
        got += await asyncio.wait_for(resp.content.read(100), 5)
    assert got == b"first\nrotated\n"
    resp.close()
    open(marker, "w").close()
    await server.wait_status(alloc.id, "complete")


async def test_alloc_stats_signal_restart_and_host_stats(server, agent, http):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("w", "trap 'echo got-usr1' USR1; while true; do sleep 0.05; done")], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    client = await http(a)
    resp = await client.get(f"/v1/client/allocation/{alloc.id}/stats")
    stats = await resp.json()
    assert stats["Tasks"]["w"]["ResourceUsage"]["MemoryStats"]["RSS"] > 0
    resp = await client.post(f"/v1/client/allocation/{alloc.id}/signal", json={"Task": "w", "Signal": "SIGUSR1"})
    assert resp.status == 200
    log = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs", "w.stdout.0")
    for _ in range(100):
        if os.path.exists(log) and "got-usr1" in open(log).read():
            break
        await asyncio.sleep(0.05)
    assert "got-usr1" in open(log).read()
    first_pid = a.alloc_runners[alloc.id].task_runners["w"].handle.pid
    resp = await client.post(f"/v1/client/allocation/{alloc.id}/restart", json={"TaskName": "w"})
    assert resp.status == 200
    tr = a.alloc_runners[alloc.id].task_runners["w"]
    for _ in range(100):
        if tr.handle is not None and tr.handle.pid != first_pid and tr.state.state == "running":
            break
        await asyncio.sleep(0.05)
    assert tr.handle is not None, [e.type for e in tr.state.events]
    assert tr.handle.pid != first_pid and tr.state.restarts == 1
    resp = await client.get("/v1/client/stats")
    host = await resp.json()
    assert host["Memory"]["Total"] > 0 and host["CPU"]
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete")


async def test_unknown_allocs_go_to_the_fallback(agent):
    a = await agent()

    async def fallback(request):
        return web.Response(text=f"proxied {request.path}")

    app = web.Application()
    app.add_routes(client_routes(a, fallback=fallback))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/v1/client/fs/ls/elsewhere")
        assert await resp.text() == "proxied /v1/client/fs/ls/elsewhere"
        resp = await client.get("/v1/client/stats", params={"node_id": "other-node"})
        assert await resp.text() == "proxied /v1/client/stats"
        resp = await client.get("/v1/client/stats", params={"node_id": a.node.id[:8]})
        assert "Memory" in await resp.json()
