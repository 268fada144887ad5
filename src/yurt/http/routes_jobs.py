"""Job routes: list, register, parse, validate, read, update, deregister and sub-resources."""

import weakref
from typing import Any

import msgspec
from aiohttp import web

from yurt.server.endpoints import EndpointError, deregister_job, evaluate_job, register_job
from yurt.server.endpoints.jobs import RegisterResult, canonical_valid_job
from yurt.structs import Job, to_wire

from .context import request_namespace, server_of
from .query import blocking_query, by_prefix, parse_bool
from .wire import alloc_list_stub, convert, job_list_stub, json_response, read_json

routes = web.RouteTableDef()


def register_body(result: RegisterResult) -> dict[str, Any]:
    return {
        "EvalID": result.eval_id,
        "EvalCreateIndex": result.eval_create_index,
        "JobModifyIndex": result.job_modify_index,
        "Warnings": "\n".join(result.warnings),
        "Index": result.index,
        "KnownLeader": True,
        "LastContact": 0,
    }


def job_from_body(request: web.Request, body: dict) -> Job:
    if not isinstance(body, dict) or not body.get("Job"):
        raise EndpointError(400, "Job must be specified")
    raw = body["Job"]
    if not isinstance(raw, dict) or not raw.get("ID"):
        raise EndpointError(400, "Job ID hasn't been provided")
    job = convert(raw, Job, "job")
    if not raw.get("Namespace") and request.query.get("namespace"):
        job.namespace = request_namespace(request)
    if not raw.get("Region"):
        job.region = request.query.get("region") or server_of(request).config.region
    return job


async def _register(request: web.Request, path_id: str | None) -> web.Response:
    body = await read_json(request)
    job = job_from_body(request, body)
    if path_id is not None and job.id != path_id:
        raise EndpointError(400, "Job ID does not match name")
    result = register_job(
        server_of(request),
        job,
        enforce_index=bool(body.get("EnforceIndex")),
        job_modify_index=int(body.get("JobModifyIndex") or 0),
        eval_priority=int(body.get("EvalPriority") or 0),
    )
    return json_response(request, register_body(result), result.index)


# the last listing's stubs: (namespace, job ID) -> [job, summary, stub, its JSON or None].
# Stored jobs and summaries are replaced, never changed in place, so a stub (and its JSON) is
# reused while both are the very objects it was made from (while a job's allocs change, most
# jobs' summaries do not).
_list_stubs: dict[tuple[str, str], list] = {}
_stub_encoder = msgspec.json.Encoder()


def _listed(snap, jobs: list) -> list[list]:
    """The cache entry of each job (with its summary), reusing the last listing's unchanged ones."""
    global _list_stubs
    previous, kept = _list_stubs, {}
    job_summary = snap.job_summary
    get = previous.get
    out = []
    for job in jobs:
        key = (job.namespace, job.id)
        summary = job_summary(job.namespace, job.id)
        hit = get(key)
        if hit is None or hit[0] is not job or hit[1] is not summary:
            hit = [job, summary, job_list_stub(job, summary), None]
        kept[key] = hit
        out.append(hit)
    _list_stubs = kept
    return out


def job_list_stubs(snap, jobs: list) -> list[dict]:
    """`job_list_stub` of each job (with its summary), reusing the last listing's unchanged ones."""
    return [hit[2] for hit in _listed(snap, jobs)]


def job_list_json(snap, jobs: list) -> bytes:
    """The JSON of `job_list_stubs(snap, jobs)`, as msgspec encodes that list (`[`, each
    stub's JSON joined by `,`, `]`), from each unchanged stub's kept JSON: W1 lists 1,000 jobs
    ~1.6 times a second while only the summaries of the few jobs being placed change, and
    encoding the whole ~600 KB list was most of a listing's CPU."""
    encode = _stub_encoder.encode
    parts = []
    for hit in _listed(snap, jobs):
        data = hit[3]
        if data is None:
            data = hit[3] = encode(hit[2])
        parts.append(data)
    return b"[" + b",".join(parts) + b"]"


# query parameters that need the listing as a list (filter, order, pages) or pretty-printed
_LIST_PARAMS = frozenset(("filter", "reverse", "next_token", "per_page", "pretty"))


# per store, the last listing's jobs (sorted by namespace and ID): the jobs table's index,
# the namespace filter and prefix they were listed for, and the list (never changed). The
# table index is the version the answer cache trusts too (`query.blocking_query`); in W1 the
# jobs table stays put between most listings while the summaries move.
_listed_jobs: "weakref.WeakKeyDictionary[Any, tuple[tuple, list]]" = weakref.WeakKeyDictionary()


def listed_jobs(store, snap, ns_filter: str | None, prefix: str) -> list:
    key = (snap.table_index("jobs"), ns_filter, prefix)
    kept = _listed_jobs.get(store)
    if kept is not None and kept[0] == key:
        return kept[1]
    jobs = by_prefix(snap.jobs(ns_filter), prefix)
    _listed_jobs[store] = (key, jobs)
    return jobs


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    as_json = _LIST_PARAMS.isdisjoint(request.query)
    server = server_of(request)

    def compute(snap, opts):
        jobs = listed_jobs(server.state, snap, opts.ns_filter, opts.prefix)
        if as_json:
            return msgspec.Raw(job_list_json(snap, jobs))
        return job_list_stubs(snap, jobs)

    return await blocking_query(request, server, ["jobs", "job_summary"], compute, cache_by_tables=True)


@routes.put("/v1/jobs")
@routes.post("/v1/jobs")
async def register_jobs(request: web.Request) -> web.Response:
    return await _register(request, None)


@routes.post("/v1/jobs/parse")
@routes.put("/v1/jobs/parse")
async def parse_job(request: web.Request) -> web.Response:
    from yurt.jobspec import JobspecError, parse, variables_from_text
    from yurt.structs.defaults import canonicalize

    body = await read_json(request)
    text = body.get("JobHCL") or ""
    if not text:
        raise EndpointError(400, "Job spec is empty")
    variables = body.get("Variables")
    try:
        if isinstance(variables, str):  # the text of a var file: `name = value` lines
            variables = variables_from_text(variables, "variables")
        job = parse(text, filename="input.hcl", variables=variables or None, allow_fs=False, env={})
    except JobspecError as exc:
        raise EndpointError(400, str(exc)) from None
    if body.get("Canonicalize"):
        job = canonicalize(job)
    return json_response(request, job)


@routes.put("/v1/validate/job")
@routes.post("/v1/validate/job")
async def validate_job(request: web.Request) -> web.Response:
    body = await read_json(request)
    job = job_from_body(request, body)
    errors: list[str] = []
    try:
        canonical_valid_job(job)
    except EndpointError as exc:
        errors = [line.strip()[2:] for line in exc.message.splitlines() if line.strip().startswith("* ")]
        errors = errors or [exc.message]
    return json_response(request, {
        "DriverConfigValidated": True,
        "ValidationErrors": errors or None,
        "Error": exc_text(errors),
        "Warnings": "",
    })


def exc_text(errors: list[str]) -> str:
    from yurt.server.endpoints import multi_error

    return multi_error(errors) if errors else ""


def _job_or_404(snap, request: web.Request) -> Job:
    job = snap.job_by_id(request_namespace(request), request.match_info["job_id"])
    if job is None:
        raise EndpointError(404, "job not found")
    return job


@routes.get("/v1/job/{job_id}")
async def read_job(request: web.Request) -> web.Response:
    def index_of(snap):
        job = snap.job_by_id(request_namespace(request), request.match_info["job_id"])
        return job.modify_index if job else None

    return await blocking_query(request, server_of(request), ["jobs"], lambda s, o: _job_or_404(s, request),
                                index_of)


@routes.put("/v1/job/{job_id}")
@routes.post("/v1/job/{job_id}")
async def update_job(request: web.Request) -> web.Response:
    return await _register(request, request.match_info["job_id"])


@routes.delete("/v1/job/{job_id}")
async def delete_job(request: web.Request) -> web.Response:
    result = deregister_job(
        server_of(request),
        request_namespace(request),
        request.match_info["job_id"],
        purge=parse_bool(request, "purge"),
        eval_priority=int(request.query.get("eval_priority") or 0),
    )
    return json_response(request, register_body(result), result.index)


@routes.get("/v1/job/{job_id}/allocations")
async def job_allocations(request: web.Request) -> web.Response:
    def compute(snap, opts):
        allocs = snap.allocs_by_job(request_namespace(request), request.match_info["job_id"])
        allocs.sort(key=lambda a: -a.create_index)
        return [alloc_list_stub(a) for a in allocs]

    return await blocking_query(request, server_of(request), ["allocs"], compute)


@routes.get("/v1/job/{job_id}/evaluations")
async def job_evaluations(request: web.Request) -> web.Response:
    def compute(snap, opts):
        evals = snap.evals_by_job(request_namespace(request), request.match_info["job_id"])
        return sorted(evals, key=lambda e: -e.create_index)

    return await blocking_query(request, server_of(request), ["evals"], compute)


@routes.get("/v1/job/{job_id}/summary")
async def job_summary(request: web.Request) -> web.Response:
    def compute(snap, opts):
        summary = snap.job_summary(request_namespace(request), request.match_info["job_id"])
        if summary is None:
            raise EndpointError(404, "job not found")
        return summary

    return await blocking_query(request, server_of(request), ["job_summary"], compute)


@routes.get("/v1/job/{job_id}/versions")
async def job_versions(request: web.Request) -> web.Response:
    def compute(snap, opts):
        versions = snap.job_versions(request_namespace(request), request.match_info["job_id"])
        if not versions:
            raise EndpointError(404, "job versions not found")
        index = snap.table_index("job_versions")
        return {"Versions": [to_wire(v) for v in versions], "Diffs": None,
                "Index": index, "KnownLeader": True, "LastContact": 0}

    return await blocking_query(request, server_of(request), ["job_versions"], compute)


@routes.put("/v1/job/{job_id}/evaluate")
@routes.post("/v1/job/{job_id}/evaluate")
async def job_evaluate(request: web.Request) -> web.Response:
    result = evaluate_job(server_of(request), request_namespace(request), request.match_info["job_id"])
    return json_response(request, register_body(result), result.index)
