"""Job operations beyond register: plan, revert, scale, stable, dispatch, periodic force;
the per-job deployment routes (`routes_deployments.py`) and the submission read (yurt keeps
no job sources yet)."""

import base64
import binascii
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from yurt.server.endpoints import EndpointError, revert_job
from yurt.server.endpoints.dispatch import dispatch_job
from yurt.server.endpoints.job_ops import (
    ScaleRequest,
    force_periodic,
    job_scale_status,
    scale_job,
    set_job_stable,
)

from .context import request_namespace, server_of
from .query import blocking_query
from .routes_deployments import job_deployments, job_latest_deployment, job_promote
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
    body = body if isinstance(body, dict) else {}
    target = body.get("Target") or {}
    job_id = request.match_info["job_id"]
    if target.get("Job") and target["Job"] != job_id:
        raise EndpointError(400, "job ID in payload did not match URL")
    count = body.get("Count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise EndpointError(400, f"json: cannot unmarshal {type(count).__name__} into Go struct field "
                                 "ScalingRequest.Count of type int64")
    req = ScaleRequest(group=target.get("Group") or "", count=count, message=str(body.get("Message") or ""),
                       error=bool(body.get("Error")), meta=body.get("Meta") or None,
                       job_modify_index=int(body.get("JobModifyIndex") or 0))
    result = scale_job(server_of(request), request_namespace(request), job_id, req)
    return json_response(request, register_body(result), result.index)


routes.get("/v1/job/{job_id}/deployment")(job_latest_deployment)
routes.get("/v1/job/{job_id}/deployments")(job_deployments)
routes.put("/v1/job/{job_id}/promote")(job_promote)
routes.post("/v1/job/{job_id}/promote")(job_promote)


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


@routes.get("/v1/job/{job_id}/scale")
async def job_scale_read(request: web.Request) -> web.Response:
    ns, job_id = request_namespace(request), request.match_info["job_id"]
    return await blocking_query(request, server_of(request), ["jobs", "allocs", "scaling_event"],
                                lambda snap, opts: job_scale_status(snap, ns, job_id))


@routes.put("/v1/job/{job_id}/stable")
@routes.post("/v1/job/{job_id}/stable")
async def job_stable(request: web.Request) -> web.Response:
    body = await read_json(request)
    job_id = request.match_info["job_id"]
    if not isinstance(body, dict) or not body.get("JobID"):
        raise EndpointError(400, "JobID must be specified")
    if body["JobID"] != job_id:
        raise EndpointError(400, "Job ID does not match")
    index = set_job_stable(server_of(request), request_namespace(request), job_id,
                           int(body.get("JobVersion") or 0), bool(body.get("Stable")))
    return json_response(request, {"Index": index}, index)


def _payload(body: dict) -> bytes:
    raw = body.get("Payload")
    if not raw:
        return b""
    if not isinstance(raw, str):
        raise EndpointError(400, "json: cannot unmarshal Payload: expected a base64 string")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EndpointError(400, f"illegal base64 data in Payload: {exc}") from None


@routes.put("/v1/job/{job_id}/dispatch")
@routes.post("/v1/job/{job_id}/dispatch")
async def job_dispatch(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise EndpointError(400, "Request body must be a JSON object")
    job_id = request.match_info["job_id"]
    if body.get("JobID") and body["JobID"] != job_id:
        raise EndpointError(400, "Job ID does not match")
    meta = body.get("Meta") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise EndpointError(400, "json: cannot unmarshal Meta: expected an object of strings")
    result = dispatch_job(
        server_of(request), request_namespace(request), job_id, payload=_payload(body), meta=meta,
        id_prefix_template=str(body.get("IdPrefixTemplate") or ""), priority=int(body.get("Priority") or 0),
        idempotency_token=request.query.get("idempotency_token") or str(body.get("IdempotencyToken") or ""),
    )
    return json_response(request, _dispatch_body(result), result.index)


def _dispatch_body(result) -> dict:
    return {"DispatchedJobID": result.dispatched_job_id, "EvalID": result.eval_id,
            "EvalCreateIndex": result.eval_create_index, "JobCreateIndex": result.job_create_index,
            "Index": result.index}


@routes.put("/v1/job/{job_id}/dispatch/payload")
@routes.post("/v1/job/{job_id}/dispatch/payload")
async def job_dispatch_raw_payload(request: web.Request) -> web.Response:
    """Nomad's jobDispatchPayloadRequest: the request body is the payload itself."""
    result = dispatch_job(server_of(request), request_namespace(request), request.match_info["job_id"],
                          payload=await request.read(),
                          idempotency_token=request.query.get("idempotency_token") or "")
    return json_response(request, _dispatch_body(result), result.index)


@routes.put("/v1/job/{job_id}/periodic/force")
@routes.post("/v1/job/{job_id}/periodic/force")
async def job_periodic_force(request: web.Request) -> web.Response:
    result = force_periodic(server_of(request), request_namespace(request), request.match_info["job_id"])
    out = {"EvalID": result.eval_id, "EvalCreateIndex": result.eval_create_index, "Index": result.index}
    return json_response(request, out, result.index)


async def _resolve_escaped(request: web.Request, job_id: str, sub: str, method: str = ""):
    """Route `request` as if its job ID had been sent escaped (`a%2Fperiodic-1`); None when
    only this catch-all route would take it."""
    path = "/v1/job/" + quote(job_id, safe="") + ("/" + quote(sub) if sub else "")
    clone = request.clone(method=method or request.method,
                          rel_url=URL.build(path=path, query_string=request.rel_url.query_string, encoded=True))
    match = await request.app.router.resolve(clone)
    if match.http_exception is None and match.handler is job_path_with_slashes:
        if method:
            return clone, None
        allowed = [m for m in ("GET", "PUT", "POST", "DELETE")
                   if (await _resolve_escaped(request, job_id, sub, m))[1] is not None]
        if not allowed:
            return clone, None
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    return clone, match


async def job_path_with_slashes(request: web.Request) -> web.Response:
    """`/v1/job/<parent>/periodic-<t>[/summary]` with the child's `/` unescaped: Nomad finds the
    job ID by the known sub-path suffixes, so clients (python-nomad, curl) need not escape it.
    Registered after every other route: it only sees paths no other route took."""
    parts = request.match_info["rest"].split("/")
    match = None
    for cut in range(len(parts) - 1, 1, -1):  # the shortest known sub-path first
        clone, match = await _resolve_escaped(request, "/".join(parts[:cut]), "/".join(parts[cut:]))
        if match is not None and match.http_exception is None:
            break
    else:
        clone, match = await _resolve_escaped(request, "/".join(parts), "")
    if match is None or match.http_exception is not None:
        raise web.HTTPNotFound()
    match.add_app(request.app)
    match.freeze()
    clone._match_info = match
    return await match.handler(clone)
