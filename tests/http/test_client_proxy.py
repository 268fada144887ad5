"""/v1/client/* without a local client: forwarded to the owning node's HTTPAddr."""

from aiohttp import web
from aiohttp.test_utils import TestServer

from api_helpers import register, register_node
from yurt.structs import Plan
from yurt.testing.mock import mock_alloc


async def fake_node_app():
    async def ls(request):
        return web.json_response([{"Name": "alloc", "path": request.query.get("path", "")}])

    async def stats(request):
        return web.json_response({"CPU": [], "node": "fake"})

    app = web.Application()
    app.router.add_get("/v1/client/fs/ls/{alloc_id}", ls)
    app.router.add_get("/v1/client/stats", stats)
    return app


async def test_fs_request_is_forwarded_to_the_owning_node(api, server):
    node_server = TestServer(await fake_node_app())
    await node_server.start_server()
    try:
        node = await register_node(api, http_addr=f"127.0.0.1:{node_server.port}")
        await register(api)
        job = server.state.snapshot().job_by_id("default", "web")
        plan = Plan(eval_id="manual", job=job)
        alloc = mock_alloc(job, node)
        plan.append_alloc(alloc)
        server.applier.apply(plan)
        resp = await api.get(f"/v1/client/fs/ls/{alloc.id}?path=/alloc")
        assert resp.status == 200, await resp.text()
        assert (await resp.json())[0]["path"] == "/alloc"
        resp = await api.get(f"/v1/client/stats?node_id={node.id}")
        assert (await resp.json())["node"] == "fake"
    finally:
        await node_server.close()


async def test_unknown_alloc_and_missing_node_id(api):
    resp = await api.get("/v1/client/fs/ls/00000000-0000-0000-0000-000000000000")
    assert resp.status == 404
    resp = await api.get("/v1/client/stats")
    assert resp.status == 400


async def test_unknown_region_is_refused(api):
    resp = await api.get("/v1/jobs?region=mars")
    assert resp.status == 500 and await resp.text() == "No path to region"
    assert (await api.get("/v1/jobs?region=global")).status == 200
