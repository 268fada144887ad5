"""Write operations beyond register: node eligibility/drain/evaluate/purge, job revert
and scale; plus the small read routes the CLI and UI expect (deployments, namespaces)."""

from aiohttp import web

from yurt.server.endpoints import (
    EndpointError,
    drain_node,
    evaluate_node,
    purge_node,
    revert_job,
    scale_job,
    set_node_eligibility,
)
from yurt.structs import DrainStrategy

from .context import request_namespace, server_of
from .query import blocking_query
from .routes_jobs import register_body
from .wire import convert, json_response, read_json

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
    body = await read_json(request)
    spec = body.get("DrainSpec") if isinstance(body, dict) else None
    strategy = None
    if spec:
        strategy = convert({"Deadline": spec.get("Deadline", 0),
                            "IgnoreSystemJobs": spec.get("IgnoreSystemJobs", False)}, DrainStrategy, "drain spec")
    index = drain_node(server_of(request), request.match_info["node_id"], strategy,
                       bool(body.get("MarkEligible")) if isinstance(body, dict) else False)
    return json_response(request, _node_eval_body([], index), index)


@routes.put("/v1/node/{node_id}/purge")
@routes.post("/v1/node/{node_id}/purge")
async def node_purge(request: web.Request) -> web.Response:
    eval_ids, index = purge_node(server_of(request), request.match_info["node_id"])
    return json_response(request, _node_eval_body(eval_ids, index), index)


@routes.put("/v1/job/{job_id}/revert")
@routes.post("/v1/job/{job_id}/revert")
async def job_revert(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or "JobVersion" not in body:
        raise EndpointError(400, "missing job version")
    enforce = body.get("EnforcePriorVersion")
    result = revert_job(server_of(request), request_namespace(request), request.match_info["job_id"],
                        int(body["JobVersion"]), int(enforce) if enforce is not None else None)
    return json_response(request, register_body(result), result.index)


@routes.put("/v1/job/{job_id}/scale")
@routes.post("/v1/job/{job_id}/scale")
async def job_scale(request: web.Request) -> web.Response:
    body = await read_json(request)
    target = (body.get("Target") or {}) if isinstance(body, dict) else {}
    group = target.get("Group", "")
    if not group:
        raise EndpointError(400, "missing task group name for scaling action")
    count = body.get("Count")
    result = scale_job(server_of(request), request_namespace(request), request.match_info["job_id"],
                       group, int(count) if count is not None else None)
    return json_response(request, register_body(result), result.index)


@routes.get("/v1/job/{job_id}/deployment")
async def job_latest_deployment(request: web.Request) -> web.Response:
    """No deployments yet: Nomad answers `null` for a job without one."""
    return await blocking_query(request, server_of(request), ["jobs"], lambda s, o: None)


@routes.get("/v1/job/{job_id}/deployments")
async def job_deployments(request: web.Request) -> web.Response:
    return await blocking_query(request, server_of(request), ["jobs"], lambda s, o: [])


@routes.get("/v1/deployments")
async def deployments(request: web.Request) -> web.Response:
    return await blocking_query(request, server_of(request), ["jobs"], lambda s, o: [])


@routes.get("/v1/namespaces")
async def namespaces(request: web.Request) -> web.Response:
    def compute(snap, opts):
        names = {"default"} | {j.namespace for j in snap.jobs(None)}
        return [{"Name": n, "Description": "Default shared namespace" if n == "default" else "",
                 "Quota": "", "Meta": None, "Capabilities": None, "NodePoolConfiguration": None,
                 "CreateIndex": 1, "ModifyIndex": 1} for n in sorted(names)]

    return await blocking_query(request, server_of(request), ["jobs"], compute)


@routes.put("/v1/job/{job_id}/plan")
@routes.post("/v1/job/{job_id}/plan")
async def job_plan(request: web.Request) -> web.Response:
    from yurt.server.endpoints.plan import plan_job

    from .routes_jobs import job_from_body

    body = await read_json(request)
    job = job_from_body(request, body)
    if job.id != request.match_info["job_id"]:
        raise EndpointError(400, "Job ID does not match")
    out = await plan_job(server_of(request), job, with_diff=bool(body.get("Diff")))
    return json_response(request, out, out["Index"])


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


@routes.get("/v1/job/{job_id}/submission")
async def job_submission(request: web.Request) -> web.Response:
    """Job sources are not kept (yet): Nomad's answer for a job registered without one."""
    raise EndpointError(404, "job source not found")


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
    from .wire import node_list_stub

    name = request.match_info["name"]

    def compute(snap, opts):
        _pool_or_404(snap, name)
        nodes = [n for n in snap.nodes() if name == "all" or n.node_pool == name]
        return [node_list_stub(n) for n in sorted(nodes, key=lambda n: n.id)]

    return await blocking_query(request, server_of(request), ["nodes"], compute)


@routes.get("/v1/node/pool/{name}/jobs")
async def node_pool_jobs(request: web.Request) -> web.Response:
    from .wire import job_list_stub

    name = request.match_info["name"]

    def compute(snap, opts):
        _pool_or_404(snap, name)
        jobs = [j for j in snap.jobs(opts.ns_filter) if name == "all" or j.node_pool == name]
        return [job_list_stub(j, snap.job_summary(j.namespace, j.id)) for j in sorted(jobs, key=lambda j: j.id)]

    return await blocking_query(request, server_of(request), ["nodes", "jobs"], compute)
