"""Cluster-wide routes: prefix search, namespaces, garbage collection."""

from aiohttp import web

from yurt.server.endpoints import EndpointError

from .context import server_of
from .query import blocking_query
from .wire import read_json

routes = web.RouteTableDef()


@routes.get("/v1/namespaces")
async def namespaces(request: web.Request) -> web.Response:
    def compute(snap, opts):
        names = {"default"} | {j.namespace for j in snap.jobs(None)}
        return [{"Name": n, "Description": "Default shared namespace" if n == "default" else "",
                 "Quota": "", "Meta": None, "Capabilities": None, "NodePoolConfiguration": None,
                 "CreateIndex": 1, "ModifyIndex": 1} for n in sorted(names)]

    return await blocking_query(request, server_of(request), ["jobs"], compute)


SEARCH_CONTEXTS = ("jobs", "evals", "allocs", "nodes")
SEARCH_LIMIT = 20


@routes.put("/v1/search")
@routes.post("/v1/search")
async def search(request: web.Request) -> web.Response:
    """Prefix search over IDs (`nomad status <prefix>`); 20 matches per context at most."""
    body = await read_json(request)
    prefix = body.get("Prefix", "") if isinstance(body, dict) else ""
    context = (body.get("Context") if isinstance(body, dict) else "") or "all"
    if context != "all" and context not in SEARCH_CONTEXTS:
        raise EndpointError(400, f"context must be one of {', '.join(SEARCH_CONTEXTS)} or all")
    namespace = request.query.get("namespace") or "default"
    ns = None if namespace == "*" else namespace

    def compute(snap, opts):
        matches, truncations = {}, {}
        for ctx in SEARCH_CONTEXTS if context == "all" else (context,):
            found = snap.by_prefix(ctx, prefix, None if ctx == "nodes" else ns)
            ids = sorted(o.id for o in found)
            matches[ctx] = ids[:SEARCH_LIMIT]
            truncations[ctx] = len(ids) > SEARCH_LIMIT
        index = max(snap.table_index(t) for t in ("jobs", "evals", "allocs", "nodes"))
        return {"Matches": matches, "Truncations": truncations, "Index": index,
                "KnownLeader": True, "LastContact": 0}

    return await blocking_query(request, server_of(request), ["jobs", "evals", "allocs", "nodes"], compute)


@routes.put("/v1/system/gc")
@routes.post("/v1/system/gc")
async def system_gc(request: web.Request) -> web.Response:
    """`nomad system gc`: collect everything collectable now, whatever its age."""
    from yurt.server.gc import FORCE, collect_garbage

    collect_garbage(server_of(request), FORCE)
    return web.Response(status=200)


@routes.put("/v1/system/reconcile/summaries")
@routes.post("/v1/system/reconcile/summaries")
async def reconcile_summaries(request: web.Request) -> web.Response:
    """Job summaries are kept exact by the state machine: nothing to reconcile."""
    return web.Response(status=200)
