"""yurt-internal routes the client agent uses (Nomad uses RPC for these)."""

from aiohttp import web

from yurt.server.endpoints import EndpointError, heartbeat_node, register_node
from yurt.structs import Node

from .context import server_of
from .wire import convert, json_response, read_json

routes = web.RouteTableDef()


@routes.put("/v1/internal/node/register")
@routes.post("/v1/internal/node/register")
async def node_register(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or not body.get("Node"):
        raise EndpointError(400, "missing node for client registration")
    node = convert(body["Node"], Node, "node")
    index, ttl = register_node(server_of(request), node)
    return json_response(request, {"Index": index, "HeartbeatTTL": ttl}, index)


@routes.put("/v1/internal/node/{node_id}/heartbeat")
@routes.post("/v1/internal/node/{node_id}/heartbeat")
async def node_heartbeat(request: web.Request) -> web.Response:
    body = await read_json(request)
    status = body.get("Status", "") if isinstance(body, dict) else ""
    index, ttl = heartbeat_node(server_of(request), request.match_info["node_id"], status or "")
    return json_response(request, {"Index": index, "HeartbeatTTL": ttl}, index)


@routes.put("/v1/internal/allocs/update")
@routes.post("/v1/internal/allocs/update")
async def allocs_update(request: web.Request) -> web.Response:
    from yurt.state.commands import AllocUpdate

    body = await read_json(request)
    raw = body.get("Allocs") if isinstance(body, dict) else None
    if not raw:
        raise EndpointError(400, "must update at least one allocation")
    updates = convert(raw, list[AllocUpdate], "alloc updates")
    index = await server_of(request).alloc_updates.submit(updates)
    return json_response(request, {"Index": index}, index)


# --- the client's alloc watch, as Nomad's Node.GetClientAllocs + Alloc.GetAllocs -------------


@routes.get("/v1/internal/node/{node_id}/allocs")
async def node_alloc_versions(request: web.Request) -> web.Response:
    """`{"Allocs": {alloc ID: AllocModifyIndex}}` for the node, blocking until one of its
    allocs changes. The client then pulls only new or changed allocs, so a node with 200
    allocs is not sent 200 full allocs (with their jobs) on every change."""
    from yurt.state.txn import node_allocs_key

    from .query import blocking_query

    node_id = request.match_info["node_id"]

    def compute(snap, opts):
        return alloc_versions_body(snap, node_id)

    return await blocking_query(request, server_of(request), [node_allocs_key(node_id)], compute)


def alloc_versions_body(snap, node_id: str):
    """The answer of `node_alloc_versions` on `snap`."""
    return {"Allocs": {a.id: a.alloc_modify_index for a in snap.allocs_by_node(node_id)}}


@routes.put("/v1/internal/allocs/get")
@routes.post("/v1/internal/allocs/get")
async def allocs_get(request: web.Request) -> web.Response:
    """Full allocations (with their Job) by ID: `{"AllocIDs": [...]}` -> `[Allocation]`;
    IDs the server no longer knows are left out."""
    from .alloc_encoding import allocs_with_jobs

    body = await read_json(request)
    ids = body.get("AllocIDs") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise EndpointError(400, "AllocIDs must be a list of allocation IDs")
    snap = server_of(request).state.snapshot()
    found = [a for a in (snap.alloc_by_id(i) for i in ids) if a is not None]
    return allocs_with_jobs(snap, found)
