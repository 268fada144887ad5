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
