"""python-nomad's client-side calls work against the client routes."""

import asyncio

import nomad
from aiohttp import web

from fakeserver import make_alloc, raw_task

from yurt.client.http import client_routes


async def test_python_nomad_fs_logs_stats(server, agent):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("w", "echo hello; echo data > $NOMAD_ALLOC_DIR/data/f")])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")
    app = web.Application()
    app.add_routes(client_routes(a))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        n = nomad.Nomad(host="127.0.0.1", port=port, timeout=10)

        def calls():
            return (
                n.client.ls.list_files(alloc.id, "alloc/data"),
                n.client.cat.read_file(alloc.id, "alloc/data/f"),
                n.client.stat.stat_file(alloc.id, "alloc/data/f"),
                n.client.read_at.read_file_offset(alloc.id, 1, 2, "alloc/data/f"),
                n.client.stream_logs.stream(alloc.id, "w", "stdout", plain=True),
                n.client.stats.read_stats(),
            )

        listing, cat, stat, readat, logs, host = await asyncio.to_thread(calls)
        assert [f["Name"] for f in listing] == ["f"]
        assert cat == "data\n" and stat["Size"] == 5 and readat == "at"
        assert logs == "hello\n"
        assert host["Memory"]["Total"] > 0
    finally:
        await runner.cleanup()
