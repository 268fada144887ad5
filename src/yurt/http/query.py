"""Query options (`index`, `wait`, `prefix`, `namespace`, `region`) and blocking queries."""

import asyncio
import functools
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from yurt.server.endpoints import EndpointError
from yurt.structs import to_wire
from yurt.structs.durations import parse_duration

from .filter_expr import compile_filter
from .wire import FastResponse, json_response, serialize_headers

DEFAULT_WAIT = 300.0
MAX_WAIT = 300.0
JITTER_FRACTION = 16


@dataclass
class QueryOptions:
    min_index: int = 0
    wait: float = DEFAULT_WAIT
    prefix: str = ""
    namespace: str = "default"
    region: str = ""

    @property
    def all_namespaces(self) -> bool:
        return self.namespace == "*"

    @property
    def ns_filter(self) -> str | None:
        """The namespace argument for snapshot list methods (None = all)."""
        return None if self.all_namespaces else self.namespace


def parse_query(request: web.Request) -> QueryOptions:
    q = request.query
    opts = QueryOptions(prefix=q.get("prefix", ""), namespace=q.get("namespace") or "default",
                        region=q.get("region", ""))
    if "index" in q:
        try:
            opts.min_index = int(q["index"])
        except ValueError:
            raise EndpointError(400, f"Invalid index: {q['index']!r}") from None
    if "wait" in q:
        try:
            opts.wait = _wait_seconds(q["wait"])
        except (ValueError, TypeError):
            raise EndpointError(400, f"Invalid wait time: {q['wait']!r}") from None
    return opts


@functools.lru_cache(maxsize=256)
def _wait_seconds(text: str) -> float:
    """`?wait=` in seconds (watchers send the same few values with every request)."""
    return min(parse_duration(text) / 1e9, MAX_WAIT)


def parse_bool(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None:
        return False
    if value in ("", "1", "true", "True", "TRUE"):
        return True
    if value in ("0", "false", "False", "FALSE"):
        return False
    raise EndpointError(400, f"Failed to parse value of {name!r} ({value}) as a bool")


def wait_with_jitter(wait: float, rng: random.Random = random.Random()) -> float:
    return wait + rng.random() * wait / JITTER_FRACTION


async def blocking_query(
    request: web.Request,
    server,
    tables: list[str],
    compute: Callable[[Any, QueryOptions], Any],
    index_of: Callable[[Any], int | None] | None = None,
    cache_by_tables: bool = False,
) -> web.Response:
    """Answer from a snapshot, waiting first (`?index=&wait=`) until the result's index
    passes `index`. The index is the max of `tables`, or `index_of(snapshot)` for a
    single object (its ModifyIndex, as Nomad), so watchers of one node's allocations
    are not woken by every other alloc change. `cache_by_tables`: `compute` reads only
    `tables`, so one encoded answer serves every identical request until they change."""
    opts = parse_query(request)
    store = server.state
    snapshot = store.snapshot()
    table_index = _max_index(snapshot, tables)
    index = (index_of(snapshot) if index_of else None) or table_index
    if 0 < opts.min_index and index <= opts.min_index:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_with_jitter(opts.wait)
        while (remaining := deadline - loop.time()) > 0:
            await store.wait_for_change(tables, table_index, remaining)
            snapshot = store.snapshot()
            table_index = _max_index(snapshot, tables)
            index = (index_of(snapshot) if index_of else None) or table_index
            if index > opts.min_index:
                break
    responses = key = None
    if index_of or cache_by_tables:
        responses = responses_of(store)
        key = _response_key(request, table_index if cache_by_tables else snapshot.index)
        cached = responses.get(key)
        if cached is not None:
            resp = FastResponse(body=cached[0], headers=cached[1])
            resp._head = cached[2]
            return resp
    result = compute(snapshot, opts)
    next_token = ""
    if isinstance(result, list):
        result, next_token = filter_and_page(request, result)
    resp = json_response(request, result, index)
    if next_token:
        resp.headers["X-Nomad-NextToken"] = next_token
    if key:
        remember_answer(responses, key, resp)
    return resp


def remember_answer(responses: dict, key: tuple, resp: web.Response) -> tuple[bytes, CIMultiDict, bytes | None]:
    """Keep `resp` for the next identical request; its headers are a function of the key
    too, so they are kept ready (serialised) with it."""
    if len(responses) >= RESPONSE_CACHE_SIZE:
        responses.clear()
    found = responses[key] = (resp.body, CIMultiDict(resp.headers), serialize_headers(resp.headers))
    return found


def _max_index(snapshot, tables: list[str]) -> int:
    return snapshot.table_index(tables[0]) if len(tables) == 1 else max(snapshot.table_index(t) for t in tables)


# Single-object reads (`index_of` given) read only the snapshot, so one answer serves every
# identical request at the same state index: the watchers of one object that a write wakes
# together are answered with one compute and one encode, and share the headers too (the
# index they carry is the snapshot's). Lists that read only their tables (`cache_by_tables`)
# are kept per table index: `GET /v1/jobs` is not re-encoded for every caller while only
# allocations change.
RESPONSE_CACHE_SIZE = 512
_caches: "weakref.WeakKeyDictionary[Any, dict[tuple, tuple[bytes, CIMultiDict, bytes | None]]]" = weakref.WeakKeyDictionary()


def responses_of(store) -> dict[tuple, tuple[bytes, CIMultiDict, bytes | None]]:
    """The answers cached for one state store (several servers may share a process)."""
    responses = _caches.get(store)
    if responses is None:
        responses = _caches[store] = {}
    return responses


def _response_key(request: web.Request, version: int) -> tuple:
    query = request.query
    if len(query) <= 2 and all(k in _WAIT_PARAMS for k in query):  # the usual watcher: ?index=&wait=
        return watcher_key(request.path, request.headers.get("X-Nomad-Token", ""), version)
    return (request.path, tuple((k, v) for k, v in query.items() if k not in _WAIT_PARAMS),
            request.headers.get("X-Nomad-Token", ""), version)


_WAIT_PARAMS = ("index", "wait")


def watcher_key(path: str, token: str, version: int) -> tuple:
    """The answer cache's key of a request with no query parameters but `index` and `wait`."""
    return (path, (), token, version)


def filter_and_page(request: web.Request, items: list) -> tuple[list, str]:
    """`?filter=` (bexpr subset), `?reverse=true`, `?per_page=` and `?next_token=` on a list."""
    q = request.query
    if q.get("filter"):
        predicate = compile_filter(q["filter"])
        items = [w for w in (to_wire(i) for i in items) if predicate(w)]
    if q.get("reverse") in ("true", "1"):
        items = list(reversed(items))
    token = q.get("next_token", "")
    if token:
        ids = [_item_id(i) for i in items]
        items = items[ids.index(token):] if token in ids else []
    per_page = int(q.get("per_page") or 0) if (q.get("per_page") or "0").isdigit() else 0
    if per_page and len(items) > per_page:
        return items[:per_page], _item_id(items[per_page])
    return items, ""


def _item_id(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("ID", ""))
    return str(getattr(item, "id", ""))


def by_prefix(items: list, prefix: str, key: Callable[[Any], str] = lambda o: o.id) -> list:
    return [o for o in items if key(o).startswith(prefix)] if prefix else items


def lookup_by_id(snap, table: str, object_id: str):
    """The object with this full ID, or the only one whose ID starts with it; None otherwise."""
    found = {"allocs": snap.alloc_by_id, "nodes": snap.node_by_id, "evals": snap.eval_by_id}[table](object_id)
    if found is None and len(object_id) < 36:
        matches = snap.by_prefix(table, object_id)
        found = matches[0] if len(matches) == 1 else None
    return found
