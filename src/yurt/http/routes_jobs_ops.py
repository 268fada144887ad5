"""Job operations beyond register: plan, revert, scale; and the deployment and
submission reads the CLI asks for (yurt has no deployments or job sources yet)."""

from aiohttp import web

from yurt.server.endpoints import EndpointError, revert_job, scale_job

from .context import request_namespace, server_of
from .query import blocking_query
from .routes_jobs import job_from_body, register_body
from .wire import json_response, read_json

routes = web.RouteTableDef()


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


@routes.put("/v1/job/{job_id}/plan")
@routes.post("/v1/job/{job_id}/plan")
async def job_plan(request: web.Request) -> web.Response:
    from yurt.server.endpoints.plan import plan_job

    body = await read_json(request)
    job = job_from_body(request, body)
    if job.id != request.match_info["job_id"]:
        raise EndpointError(400, "Job ID does not match")
    out = await plan_job(server_of(request), job, with_diff=bool(body.get("Diff")))
    return json_response(request, out, out["Index"])


@routes.get("/v1/job/{job_id}/submission")
async def job_submission(request: web.Request) -> web.Response:
    """Job sources are not kept (yet): Nomad's answer for a job registered without one."""
    raise EndpointError(404, "job source not found")
