"""yurt-internal routes the client agent uses (Nomad uses RPC for these)."""

import msgspec
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
    pretty = "pretty" in request.query and request.query.get("pretty") not in ("0", "false")

    def compute(snap, opts):
        return alloc_versions_body(snap, node_id) if pretty else encoded_alloc_versions(snap, node_id)

    return await blocking_query(request, server_of(request), [node_allocs_key(node_id)], compute)


def alloc_versions_body(snap, node_id: str) -> dict:
    """The answer of `node_alloc_versions` on `snap`."""
    return {"Allocs": snap.alloc_versions_by_node(node_id).to_dict()}


# node ID -> (its version map in the state, that answer encoded). The node's watch wakes on
# every write to its allocs, status reports included, which leave the map (the same object)
# as it was: those wakes reuse the encoded answer.
_ENCODED_VERSIONS: dict[str, tuple[object, msgspec.Raw]] = {}
_ENCODED_VERSIONS_MAX = 20_000
_encode = msgspec.json.Encoder().encode


def encoded_alloc_versions(snap, node_id: str) -> msgspec.Raw:
    """`alloc_versions_body` as encoded JSON, kept while the node's version map is unchanged."""
    versions = snap.alloc_versions_by_node(node_id)
    hit = _ENCODED_VERSIONS.get(node_id)
    if hit is not None and hit[0] is versions:
        return hit[1]
    raw = msgspec.Raw(_encode({"Allocs": versions.to_dict()}))
    if len(_ENCODED_VERSIONS) >= _ENCODED_VERSIONS_MAX:
        _ENCODED_VERSIONS.clear()
    _ENCODED_VERSIONS[node_id] = (versions, raw)
    return raw


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
