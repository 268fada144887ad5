"""Full allocations with their Job as JSON, encoding each job version once.

Every alloc of a job version shares one Job; encoding that Job per alloc was most of the
cost of the client's alloc watch. The encoded job is cached (keyed by the job's identity
and indexes, so a changed job is a different key) and spliced in as `msgspec.Raw`."""

from collections import OrderedDict

import msgspec
from aiohttp import web

from .wire import set_index_headers

_encoder = msgspec.json.Encoder()
_CACHE: "OrderedDict[tuple, msgspec.Raw]" = OrderedDict()
CACHE_SIZE = 256


def _job_key(job) -> tuple:
    return (job.namespace, job.id, job.version, job.job_modify_index, job.modify_index)


# the last job encoded per encoder: (job, its encoding, the encoder, held so that its id stays
# its own). Jobs in the state are never changed, so the same object encodes the same; most
# answers are one alloc of the job encoded just before.
_LAST: dict[int, tuple] = {}


def encoded_job(job, encoder=_encoder) -> msgspec.Raw:
    last = _LAST.get(id(encoder))
    if last is not None and last[0] is job:
        return last[1]
    key = (*_job_key(job), type(encoder))  # JSON, or msgpack (yurt.rpc)
    raw = _CACHE.get(key)
    if raw is None:
        raw = msgspec.Raw(encoder.encode(job))
        _CACHE[key] = raw
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    if len(_LAST) > 8:
        _LAST.clear()
    _LAST[id(encoder)] = (job, raw, encoder)
    return raw


def job_of(snap, alloc):
    """The alloc's job version (plans carry the job once, not in every alloc)."""
    if alloc.job is not None:
        return alloc.job
    return snap.job_version(alloc.namespace, alloc.job_id, alloc.job_version) or snap.job_by_id(
        alloc.namespace, alloc.job_id)


def allocs_with_encoded_jobs(snap, allocs, encoder=_encoder, metrics: bool = True) -> list:
    """Copies of `allocs` whose `job` is their job version already encoded by `encoder`
    (`msgspec.Raw`): encoding the list with `encoder` gives the allocs with their jobs,
    also inside a larger reply (the RPC listener frames them in one encode). `metrics`
    False: without their placement `Metrics` (None), which a client never reads (the RPC
    listener's answers: the metrics' node scores were ~40% of an alloc's encode)."""
    replace = msgspec.structs.replace
    out = []
    last_job = last_raw = None
    for alloc in allocs:
        job = job_of(snap, alloc)
        if job is not last_job:  # the allocs of one pull mostly share one job object
            last_job, last_raw = job, (encoded_job(job, encoder) if job is not None else None)
        out.append(replace(alloc, job=last_raw) if metrics else replace(alloc, job=last_raw, metrics=None))
    return out


def encode_allocs_with_jobs(snap, allocs, encoder=_encoder) -> bytes:
    return encoder.encode(allocs_with_encoded_jobs(snap, allocs, encoder))


def allocs_with_jobs(snap, allocs, index: int | None = None) -> web.Response:
    resp = web.Response(body=encode_allocs_with_jobs(snap, allocs), content_type="application/json")
    set_index_headers(resp, index or snap.table_index("allocs"))
    return resp
