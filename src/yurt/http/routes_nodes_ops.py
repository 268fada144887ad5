"""Node operations (eligibility, evaluate, drain, purge) and node pools."""

from aiohttp import web

from yurt.server.endpoints import EndpointError, drain_node, evaluate_node, purge_node, set_node_eligibility
from yurt.structs import DrainStrategy

from .context import server_of
from .query import blocking_query
from .wire import convert, job_list_stub, json_response, node_list_stub, read_json

routes = web.RouteTableDef()


def _node_eval_body(eval_ids: list[str], index: int) -> dict:
    return {"EvalIDs": eval_ids or None, "EvalCreateIndex": index if eval_ids else 0,
            "NodeModifyIndex": index, "Index": index, "KnownLeader": True, "LastContact": 0}


@routes.put("/v1/node/{node_id}/eligibility")
@routes.post("/v1/node/{node_id}/eligibility")
async def node_eligibility(request: web.Request) -> web.Response:
    body = await read_json(request)
    eligibility = body.get("Eligibility", "") if isinstance(body, dict) else ""
    eval_ids, index = set_node_eligibility(server_of(request), request.match_info["node_id"], eligibility)
    return json_response(request, _node_eval_body(eval_ids, index), index)


@routes.put("/v1/node/{node_id}/evaluate")
@routes.post("/v1/node/{node_id}/evaluate")
async def node_evaluate(request: web.Request) -> web.Response:
    eval_ids, index = evaluate_node(server_of(request), request.match_info["node_id"])
    return json_response(request, _node_eval_body(eval_ids, index), index)


@routes.put("/v1/node/{node_id}/drain")
@routes.post("/v1/node/{node_id}/drain")
async def node_drain(request: web.Request) -> web.Response:
    """Body `{"DrainSpec": {"Deadline": ns, "IgnoreSystemJobs": bool} | null, "MarkEligible": bool,
    "Meta": {...}}`; a null DrainSpec cancels the drain."""
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    spec = body.get("DrainSpec")
    strategy = None
    if spec:
        strategy = convert({"Deadline": spec.get("Deadline", 0),
                            "IgnoreSystemJobs": spec.get("IgnoreSystemJobs", False)}, DrainStrategy, "drain spec")
    meta = body.get("Meta")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise EndpointError(400, "Meta must be a map of strings")
    eval_ids, index = drain_node(server_of(request), request.match_info["node_id"], strategy,
                                 bool(body.get("MarkEligible")), meta or None)
    return json_response(request, _node_eval_body(eval_ids, index), index)


@routes.put("/v1/node/{node_id}/purge")
@routes.post("/v1/node/{node_id}/purge")
async def node_purge(request: web.Request) -> web.Response:
    eval_ids, index = purge_node(server_of(request), request.match_info["node_id"])
    return json_response(request, _node_eval_body(eval_ids, index), index)


BUILTIN_POOLS = {"all": "Node pool with all nodes in the cluster.", "default": "Default node pool."}


def _pools(snap) -> list[dict]:
    names = set(BUILTIN_POOLS) | {n.node_pool for n in snap.nodes() if n.node_pool}
    return [{"Name": name, "Description": BUILTIN_POOLS.get(name, ""), "Meta": None,
             "SchedulerConfiguration": None, "CreateIndex": 1, "ModifyIndex": 1} for name in sorted(names)]


def _pool_or_404(snap, name: str) -> dict:
    for pool in _pools(snap):
        if pool["Name"] == name:
            return pool
    raise EndpointError(404, "node pool not found")


@routes.get("/v1/node/pools")
async def node_pools(request: web.Request) -> web.Response:
    return await blocking_query(request, server_of(request), ["nodes"], lambda s, o: _pools(s))


@routes.get("/v1/node/pool/{name}")
async def node_pool(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return await blocking_query(request, server_of(request), ["nodes"], lambda s, o: _pool_or_404(s, name))


@routes.get("/v1/node/pool/{name}/nodes")
async def node_pool_nodes(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def compute(snap, opts):
        _pool_or_404(snap, name)
        nodes = [n for n in snap.nodes() if name == "all" or n.node_pool == name]
        return [node_list_stub(n) for n in sorted(nodes, key=lambda n: n.id)]

    return await blocking_query(request, server_of(request), ["nodes"], compute)


@routes.get("/v1/node/pool/{name}/jobs")
async def node_pool_jobs(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def compute(snap, opts):
        _pool_or_404(snap, name)
        jobs = [j for j in snap.jobs(opts.ns_filter) if name == "all" or j.node_pool == name]
        return [job_list_stub(j, snap.job_summary(j.namespace, j.id)) for j in sorted(jobs, key=lambda j: j.id)]

    return await blocking_query(request, server_of(request), ["nodes", "jobs"], compute)
