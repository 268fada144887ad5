"""Deployment routes: `/v1/deployments`, `/v1/deployment/:id` and its operations (promote,
fail, pause/resume, allocation-health, unblock), `/v1/job/:id/deployment(s)`,
`/v1/job/:id/promote`. Reads are blocking queries on the `deployment` table. Operations
refused by Nomad's RPC layer answer 500 with Nomad's message, as Nomad's HTTP API does."""

from aiohttp import web

from yurt.server.deployment_watcher import deployment_eval, fail_command
from yurt.server.endpoints import EndpointError
from yurt.state.commands import (
    DeploymentAllocHealth,
    DeploymentPromote,
    DeploymentStatusSet,
)
from yurt.structs.deployment import (
    DEPLOYMENT_STATUS_BLOCKED,
    DEPLOYMENT_STATUS_PAUSED,
    DEPLOYMENT_STATUS_RUNNING,
    DESC_FAILED_BY_USER,
    DESC_PAUSED,
    DESC_RUNNING,
    DESC_RUNNING_AUTO_PROMOTION,
    DESC_RUNNING_NEEDS_PROMOTION,
    Deployment,
)

from .context import request_namespace, server_of
from .query import blocking_query
from .wire import alloc_list_stub, json_response, read_json

routes = web.RouteTableDef()
TABLES = ["deployment"]


def _lookup(snap, deployment_id: str) -> Deployment | None:
    found = snap.deployment_by_id(deployment_id)
    if found is None and 0 < len(deployment_id) < 36:
        matches = [d for d in snap.deployments(None) if d.id.startswith(deployment_id)]
        found = matches[0] if len(matches) == 1 else None
    return found


def _require(request: web.Request, deployment_id: str) -> Deployment:
    d = server_of(request).state.snapshot().deployment_by_id(deployment_id)
    if d is None:
        raise EndpointError(500, "deployment not found")
    return d


@routes.get("/v1/deployments")
async def list_deployments(request: web.Request) -> web.Response:
    def compute(snap, opts):
        return [d for d in snap.deployments(opts.ns_filter) if d.id.startswith(opts.prefix)]

    return await blocking_query(request, server_of(request), TABLES, compute)


@routes.get("/v1/deployment/{deployment_id}")
async def get_deployment(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]

    def compute(snap, opts):
        d = _lookup(snap, deployment_id)
        if d is None:
            raise EndpointError(404, "deployment not found")
        return d

    return await blocking_query(request, server_of(request), TABLES, compute)


@routes.get("/v1/deployment/allocations/{deployment_id}")
async def deployment_allocations(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]

    def compute(snap, opts):
        d = snap.deployment_by_id(deployment_id)
        if d is None:
            return []
        return [alloc_list_stub(a) for a in snap.allocs_by_job(d.namespace, d.job_id) if a.deployment_id == d.id]

    return await blocking_query(request, server_of(request), ["allocs", "deployment"], compute)


def _update_response(request: web.Request, command, index: int) -> web.Response:
    snap = server_of(request).state.snapshot()
    ev = getattr(command, "eval", None)
    d = snap.deployment_by_id(command.deployment_id)
    job = getattr(command, "job", None)
    reverted = snap.job_by_id(job.namespace, job.id).version if job is not None else None
    body = {
        "EvalID": ev.id if ev is not None else "",
        "EvalCreateIndex": index if ev is not None else 0,
        "DeploymentModifyIndex": d.modify_index if d is not None else index,
        "RevertedJobVersion": reverted,
        "Index": index,
    }
    return json_response(request, body, index)


def _apply(request: web.Request, command) -> web.Response:
    server = server_of(request)
    try:
        index = server.state.apply(command)
    except Exception as exc:
        if type(exc).__name__ == "StateError":
            raise EndpointError(500, str(exc)) from None
        raise
    return _update_response(request, command, index)


def _job_of(request: web.Request, d: Deployment):
    job = server_of(request).state.snapshot().job_by_id(d.namespace, d.job_id)
    if job is None:
        raise EndpointError(500, f'job "{d.job_id}" for deployment not found')
    return job


def promote(request: web.Request, d: Deployment, body: dict) -> web.Response:
    if not d.active:
        raise EndpointError(500, "can't promote terminal deployment")
    groups = body.get("Groups") or []
    if not isinstance(groups, list):
        raise EndpointError(400, "Groups must be a list of task group names")
    all_groups = bool(body.get("All")) or not groups
    ev = deployment_eval(d, _job_of(request, d), server_of(request).now_ns())
    cmd = DeploymentPromote(deployment_id=d.id, all=all_groups, groups=[str(g) for g in groups],
                            updated_at=server_of(request).now_ns(), eval=ev)
    return _apply(request, cmd)


@routes.put("/v1/deployment/promote/{deployment_id}")
@routes.post("/v1/deployment/promote/{deployment_id}")
async def promote_deployment(request: web.Request) -> web.Response:
    body = await read_json(request)
    return promote(request, _require(request, request.match_info["deployment_id"]), body if isinstance(body, dict) else {})


@routes.put("/v1/deployment/fail/{deployment_id}")
@routes.post("/v1/deployment/fail/{deployment_id}")
async def fail_deployment(request: web.Request) -> web.Response:
    d = _require(request, request.match_info["deployment_id"])
    if not d.active:
        raise EndpointError(500, "can't fail terminal deployment")
    server = server_of(request)
    return _apply(request, fail_command(server.state.snapshot(), d, DESC_FAILED_BY_USER, server.now_ns()))


@routes.put("/v1/deployment/pause/{deployment_id}")
@routes.post("/v1/deployment/pause/{deployment_id}")
async def pause_deployment(request: web.Request) -> web.Response:
    body = await read_json(request)
    pause = bool(body.get("Pause")) if isinstance(body, dict) else False
    d = _require(request, request.match_info["deployment_id"])
    if not d.active:
        raise EndpointError(500, "can't pause terminal deployment" if pause else "can't resume terminal deployment")
    server = server_of(request)
    now = server.now_ns()
    if pause:
        cmd = DeploymentStatusSet(deployment_id=d.id, status=DEPLOYMENT_STATUS_PAUSED, status_description=DESC_PAUSED,
                                  updated_at=now)
    else:
        running = Deployment(task_groups=d.task_groups, status=DEPLOYMENT_STATUS_RUNNING)
        desc = DESC_RUNNING
        if running.requires_promotion():
            desc = DESC_RUNNING_AUTO_PROMOTION if running.has_auto_promote() else DESC_RUNNING_NEEDS_PROMOTION
        cmd = DeploymentStatusSet(deployment_id=d.id, status=DEPLOYMENT_STATUS_RUNNING, status_description=desc,
                                  updated_at=now, eval=deployment_eval(d, _job_of(request, d), now))
    return _apply(request, cmd)


@routes.put("/v1/deployment/allocation-health/{deployment_id}")
@routes.post("/v1/deployment/allocation-health/{deployment_id}")
async def deployment_alloc_health(request: web.Request) -> web.Response:
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    healthy = body.get("HealthyAllocationIDs") or []
    unhealthy = body.get("UnhealthyAllocationIDs") or []
    if not healthy and not unhealthy:
        raise EndpointError(400, "must specify at least one healthy/unhealthy allocation ID")
    d = _require(request, request.match_info["deployment_id"])
    if not d.active:
        raise EndpointError(500, "can't set health of allocations for a terminal deployment")
    now = server_of(request).now_ns()
    cmd = DeploymentAllocHealth(deployment_id=d.id, healthy=[str(i) for i in healthy],
                                unhealthy=[str(i) for i in unhealthy], updated_at=now,
                                eval=deployment_eval(d, _job_of(request, d), now))
    return _apply(request, cmd)


@routes.put("/v1/deployment/unblock/{deployment_id}")
@routes.post("/v1/deployment/unblock/{deployment_id}")
async def unblock_deployment(request: web.Request) -> web.Response:
    d = _require(request, request.match_info["deployment_id"])
    if not d.active:
        raise EndpointError(500, "can't unblock terminal deployment")
    if d.status != DEPLOYMENT_STATUS_BLOCKED:
        raise EndpointError(500, "can't unblock running deployment")
    raise EndpointError(500, "multiregion deployments are not supported")


# -- per job ---------------------------------------------------------------------------
async def job_latest_deployment(request: web.Request) -> web.Response:
    ns, job_id = request_namespace(request), request.match_info["job_id"]
    return await blocking_query(request, server_of(request), TABLES,
                                lambda snap, opts: snap.latest_deployment_by_job(ns, job_id))


async def job_deployments(request: web.Request) -> web.Response:
    ns, job_id = request_namespace(request), request.match_info["job_id"]
    every = request.query.get("all") in ("true", "1")

    def compute(snap, opts):
        job = snap.job_by_id(ns, job_id)
        found = snap.deployments_by_job(ns, job_id)
        if job is not None and not every:
            found = [d for d in found if d.job_create_index == job.create_index]
        return found

    return await blocking_query(request, server_of(request), TABLES, compute)


async def job_promote(request: web.Request) -> web.Response:
    ns, job_id = request_namespace(request), request.match_info["job_id"]
    body = await read_json(request)
    d = server_of(request).state.snapshot().latest_deployment_by_job(ns, job_id)
    if d is None:
        raise EndpointError(404, f'job "{job_id}" has no deployment')
    return promote(request, d, body if isinstance(body, dict) else {})
