"""Allocation, evaluation and node routes (mostly reads, all blocking)."""

from aiohttp import web

from yurt.server.endpoints import EndpointError, stop_alloc
from yurt.state.txn import node_allocs_key, node_key
from yurt.structs import evolve

from .context import server_of
from .query import blocking_query, by_prefix, lookup_by_id, parse_bool
from .wire import alloc_list_stub, json_response, node_list_stub, node_wire

routes = web.RouteTableDef()


def with_job(snap, alloc):
    """The alloc with its Job filled in (the version it was placed with, else the newest)."""
    if alloc.job is not None:
        return alloc
    job = snap.job_version(alloc.namespace, alloc.job_id, alloc.job_version)
    job = job or snap.job_by_id(alloc.namespace, alloc.job_id)
    return evolve(alloc, job=job) if job is not None else alloc


@routes.get("/v1/allocations")
async def list_allocs(request: web.Request) -> web.Response:
    with_resources = parse_bool(request, "resources")
    with_task_states = request.query.get("task_states", "true") not in ("false", "0")

    def compute(snap, opts):
        allocs = by_prefix(snap.allocs(opts.ns_filter), opts.prefix)
        allocs.sort(key=lambda a: a.id)
        return [alloc_list_stub(a, with_resources, with_task_states) for a in allocs]

    return await blocking_query(request, server_of(request), ["allocs"], compute)


def _alloc_or_404(snap, alloc_id: str):
    alloc = lookup_by_id(snap, "allocs", alloc_id)
    if alloc is None:
        raise EndpointError(404, "alloc not found")
    return alloc


@routes.get("/v1/allocation/{alloc_id}")
async def read_alloc(request: web.Request) -> web.Response:
    alloc_id = request.match_info["alloc_id"]

    def compute(snap, opts):
        return with_job(snap, _alloc_or_404(snap, alloc_id))

    def index_of(snap):
        alloc = snap.alloc_by_id(alloc_id)
        return alloc.modify_index if alloc else None

    return await blocking_query(request, server_of(request), ["allocs"], compute, index_of)


@routes.put("/v1/allocation/{alloc_id}/stop")
@routes.post("/v1/allocation/{alloc_id}/stop")
async def stop_allocation(request: web.Request) -> web.Response:
    eval_id, index = stop_alloc(server_of(request), request.match_info["alloc_id"])
    return json_response(request, {"EvalID": eval_id, "Index": index}, index)


@routes.get("/v1/evaluations")
async def list_evals(request: web.Request) -> web.Response:
    status = request.query.get("status", "")
    job = request.query.get("job", "")

    def compute(snap, opts):
        evals = by_prefix(snap.evals(opts.ns_filter), opts.prefix)
        if status:
            evals = [e for e in evals if e.status == status]
        if job:
            evals = [e for e in evals if e.job_id == job]
        return sorted(evals, key=lambda e: -e.create_index)

    return await blocking_query(request, server_of(request), ["evals"], compute)


def _eval_or_404(snap, eval_id: str):
    ev = snap.eval_by_id(eval_id)
    if ev is None:
        raise EndpointError(404, "eval not found")
    return ev


@routes.get("/v1/evaluation/{eval_id}")
async def read_eval(request: web.Request) -> web.Response:
    eval_id = request.match_info["eval_id"]
    def index_of(snap):
        ev = snap.eval_by_id(eval_id)
        return ev.modify_index if ev else None

    return await blocking_query(request, server_of(request), ["evals"], lambda s, o: _eval_or_404(s, eval_id),
                                index_of)


@routes.get("/v1/evaluation/{eval_id}/allocations")
async def eval_allocs(request: web.Request) -> web.Response:
    eval_id = request.match_info["eval_id"]

    def compute(snap, opts):
        return [alloc_list_stub(a) for a in snap.allocs_by_eval(eval_id)]

    return await blocking_query(request, server_of(request), ["allocs"], compute)


@routes.get("/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    with_resources = parse_bool(request, "resources")

    def compute(snap, opts):
        nodes = sorted(by_prefix(snap.nodes(), opts.prefix), key=lambda n: n.id)
        return [node_list_stub(n, with_resources) for n in nodes]

    return await blocking_query(request, server_of(request), ["nodes"], compute)


def _node_or_404(snap, node_id: str):
    node = lookup_by_id(snap, "nodes", node_id)
    if node is None:
        raise EndpointError(404, "node not found")
    return node


def node_answer(node) -> dict:
    """The body of `GET /v1/node/:id` (also sent by `fastget`, the watchers' fast path)."""
    data = node_wire(node)
    data["SecretID"] = ""
    return data


@routes.get("/v1/node/{node_id}")
async def read_node(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]

    def compute(snap, opts):
        return node_answer(_node_or_404(snap, node_id))

    def index_of(snap):
        node = snap.node_by_id(node_id)
        return node.modify_index if node else None

    found = lookup_by_id(server_of(request).state.snapshot(), "nodes", node_id)
    tables = [node_key(found.id)] if found else ["nodes"]  # other nodes' writes do not wake it
    return await blocking_query(request, server_of(request), tables, compute, index_of)


@routes.get("/v1/node/{node_id}/allocations")
async def node_allocations(request: web.Request) -> web.Response:
    """Full allocations (with their Job): the client agent watches this route."""
    node_id = request.match_info["node_id"]

    def compute(snap, opts):
        allocs = sorted(snap.allocs_by_node(node_id), key=lambda a: a.create_index)
        return [with_job(snap, a) for a in allocs]

    return await blocking_query(request, server_of(request), [node_allocs_key(node_id)], compute)
