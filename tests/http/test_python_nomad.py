"""python-nomad 2.1 against a real listening yurt server: register from JSON, read,
list allocations/evaluations/nodes, deregister."""

import asyncio

import nomad
import pytest
from aiohttp import web

from api_helpers import job_json, node_json
from yurt.http import build_app
from yurt.server import Server, ServerConfig
from yurt.testing.mock import mock_group, mock_node


@pytest.fixture
async def listening():
    server = Server(ServerConfig(num_schedulers=1, alloc_update_batch_window=0.01))
    await server.start()
    runner = web.AppRunner(build_app(server), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield server, port
    await runner.cleanup()
    await server.stop()


def drive_python_nomad(port: int, node_id: str) -> dict:
    n = nomad.Nomad(host="127.0.0.1", port=port, timeout=10)
    job = job_json("pyjob", task_groups=[mock_group(count=2)])
    out = n.job.register_job("pyjob", {"Job": job})
    seen = {"register": out}
    seen["job"] = n.job.get_job("pyjob")
    seen["jobs"] = n.jobs.get_jobs()
    seen["summary"] = n.job.get_summary("pyjob")
    for _ in range(200):
        allocs = n.allocations.get_allocations()
        if len(allocs) == 2:
            break
        import time
        time.sleep(0.05)
    seen["allocations"] = n.allocations.get_allocations()
    seen["job_allocations"] = n.job.get_allocations("pyjob")
    seen["evaluations"] = n.evaluations.get_evaluations()
    seen["evaluation"] = n.evaluation.get_evaluation(out["EvalID"])
    seen["nodes"] = n.nodes.get_nodes()
    seen["node"] = n.node.get_node(node_id)
    seen["leader"] = n.status.leader.get_leader()
    seen["deregister"] = n.job.deregister_job("pyjob", purge=True)
    try:
        n.job.get_job("pyjob")
        seen["after_purge"] = "still there"
    except nomad.api.exceptions.URLNotFoundNomadException:
        seen["after_purge"] = "not found"
    return seen


async def test_python_nomad_round_trip(listening):
    server, port = listening
    import aiohttp

    node = mock_node()
    async with aiohttp.ClientSession() as session:
        resp = await session.put(f"http://127.0.0.1:{port}/v1/internal/node/register", json={"Node": node_json(node)})
        assert resp.status == 200
    seen = await asyncio.to_thread(drive_python_nomad, port, node.id)
    assert seen["register"]["EvalID"]
    assert seen["job"]["ID"] == "pyjob" and seen["job"]["TaskGroups"][0]["Count"] == 2
    assert [j["ID"] for j in seen["jobs"]] == ["pyjob"]
    assert seen["summary"]["JobID"] == "pyjob"
    assert len(seen["allocations"]) == 2 and {a["NodeID"] for a in seen["allocations"]} == {node.id}
    assert len(seen["job_allocations"]) == 2
    assert seen["register"]["EvalID"] in [e["ID"] for e in seen["evaluations"]]
    assert seen["evaluation"]["ID"] == seen["register"]["EvalID"]
    assert [x["ID"] for x in seen["nodes"]] == [node.id]
    assert seen["node"]["ID"] == node.id
    assert seen["leader"] == "127.0.0.1:4647"
    assert seen["deregister"]["EvalID"]
    assert seen["after_purge"] == "not found"
