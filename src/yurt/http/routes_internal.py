"""yurt-internal routes the client agent uses (Nomad uses RPC for these)."""

import msgspec
from aiohttp import web

from yurt.server.endpoints import EndpointError, heartbeat_node
from yurt.server.endpoints.nodes import submit_register
from yurt.structs import Node

from .alloc_delta import delta_requested, parse_known, wait_node_allocs
from .context import server_of
from .node_decode import decode_node_register
from .wire import convert, drop_nulls, json_response, read_json

routes = web.RouteTableDef()


@routes.put("/v1/internal/node/register")
@routes.post("/v1/internal/node/register")
async def node_register(request: web.Request) -> web.Response:
    node = decode_node_register(await request.read())
    if node is None:  # not decoded directly: the lenient path, with its errors
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("Node"):
            raise EndpointError(400, "missing node for client registration")
        node = convert(body["Node"], Node, "node")
    index, ttl = await submit_register(server_of(request), node)
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
    updates = decode_alloc_updates(await request.read())
    if updates is None:  # not decoded directly: the lenient path, with its errors
        from yurt.state.commands import AllocUpdate

        body = await read_json(request)
        raw = body.get("Allocs") if isinstance(body, dict) else None
        if not raw:
            raise EndpointError(400, "must update at least one allocation")
        updates = convert(raw, list[AllocUpdate], "alloc updates")
    index = await server_of(request).alloc_updates.submit(updates)
    return json_response(request, {"Index": index}, index)


def _nullable(info) -> bool:
    mi = msgspec.inspect
    return isinstance(info, (mi.NoneType, mi.AnyType)) or (
        isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types))


def _decoded_type(f):
    """The struct field's type without its `None`; None when a JSON null there would not
    decode to what dropping it gives (a nullable field must default to None)."""
    mi = msgspec.inspect
    t = f.type
    if not _nullable(t):
        return t
    if isinstance(t, mi.AnyType) or f.required or f.default is not None:
        return None
    rest = [m for m in t.types if not isinstance(m, mi.NoneType)]
    return rest[0] if len(rest) == 1 else None


def _nulls_are_defaults(info, seen: set, skip: tuple = ()) -> bool:
    """True when decoding JSON straight into `info`, whenever that succeeds, gives what
    `wire.convert` gives (nulls dropped, then converted): every nullable struct field
    defaults to None, no container holds nullable items, no `Any` below the top level."""
    mi = msgspec.inspect
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return True
        seen.add(info.cls)
        for f in info.fields:
            if f.name in skip:
                continue
            t = _decoded_type(f)
            if t is None or not _nulls_are_defaults(t, seen):
                return False
        return True
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return not _nullable(info.item_type) and _nulls_are_defaults(info.item_type, seen)
    if isinstance(info, mi.DictType):
        return (isinstance(info.key_type, mi.StrType) and not _nullable(info.value_type)
                and _nulls_are_defaults(info.value_type, seen))
    return isinstance(info, (mi.StrType, mi.IntType, mi.FloatType, mi.BoolType))


def _update_decoder():
    """A decoder of `{"Allocs": [AllocUpdate]}` straight from the request bytes, and the
    AllocUpdate fields it must drop nulls from afterwards (`dict[str, Any]`); None when
    that would not give exactly what the lenient path gives."""
    from yurt.state.commands import AllocUpdate

    mi = msgspec.inspect
    info = mi.type_info(AllocUpdate)
    raw_fields = tuple(
        f.name for f in info.fields  # `dict[str, Any] | None = None`: its nulls are dropped after
        if isinstance(f.type, mi.UnionType) and len(f.type.types) == 2 and not f.required and f.default is None
        and any(isinstance(m, mi.DictType) and isinstance(m.value_type, mi.AnyType) for m in f.type.types))
    if not _nulls_are_defaults(info, set(), raw_fields):
        return None
    body = msgspec.defstruct("AllocUpdatesBody", [("Allocs", list[AllocUpdate] | None, None)])
    return msgspec.json.Decoder(body), raw_fields


_UPDATE_DECODER = _update_decoder()


def decode_alloc_updates(raw: bytes) -> list | None:
    """The request's updates as the lenient path (`read_json` + `convert`) reads them, or
    None when the direct decode does not apply (malformed, nulls in a non-null field, no
    allocs): the caller then takes the lenient path, which also words the errors."""
    if _UPDATE_DECODER is None:
        return None
    decoder, raw_fields = _UPDATE_DECODER
    try:
        updates = decoder.decode(raw).Allocs
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not updates:
        return None
    for update in updates:
        for name in raw_fields:
            value = getattr(update, name)
            if value is not None:
                setattr(update, name, drop_nulls(value))
    return updates


# --- the client's alloc watch, as Nomad's Node.GetClientAllocs + Alloc.GetAllocs -------------


@routes.get("/v1/internal/node/{node_id}/allocs")
async def node_alloc_versions(request: web.Request) -> web.Response:
    """`{"Allocs": {alloc ID: AllocModifyIndex}}` for the node, blocking until one of its
    allocs changes. The client then pulls only new or changed allocs, so a node with 200
    allocs is not sent 200 full allocs (with their jobs) on every change."""
    from yurt.state.txn import node_allocs_key

    from .query import blocking_query

    node_id = request.match_info["node_id"]
    if delta_requested(request.query.get("delta")):
        return await node_alloc_delta(request, node_id)
    pretty = "pretty" in request.query and request.query.get("pretty") not in ("0", "false")

    def compute(snap, opts):
        return alloc_versions_body(snap, node_id) if pretty else encoded_alloc_versions(snap, node_id)

    return await blocking_query(request, server_of(request), [node_allocs_key(node_id)], compute)


async def node_alloc_delta(request: web.Request, node_id: str) -> web.Response:
    """`?delta=1[&known=K]`: `{"Total": N, "Changed": [Allocation with Job]}`, the allocs
    with AllocModifyIndex > `index` in full and the node's alloc count (`http.alloc_delta`)."""
    from .alloc_encoding import encode_allocs_with_jobs
    from .query import parse_query
    from .wire import FastResponse, set_index_headers

    opts = parse_query(request)
    known = parse_known(request.query.get("known"))
    answer = await wait_node_allocs(server_of(request).state, node_id, opts.min_index, opts.wait, known)
    changed = encode_allocs_with_jobs(answer.snapshot, answer.changed_allocs(opts.min_index))
    body = b'{"Total":%d,"Changed":%s}' % (len(answer.versions), changed)
    resp = FastResponse(body=body, content_type="application/json")
    set_index_headers(resp, answer.index)
    return resp


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
