"""The client of an agent that also runs the server (`-dev`, or `server` + `client` blocks)
reaches that server in process, as Nomad's client does through its in-process RPC handler,
instead of through its own HTTP port: the node registration and heartbeats, the blocking
query on the node's allocations, the pull of changed allocations and the alloc status
updates. Each of these went through httpx, the loopback socket and aiohttp, both ways,
in the one event loop that also runs the server (W5: ~2-5 ms per hop, four hops on every
task's path to `running`).

`LocalServerAPI` answers those `/v1/internal/...` requests with the data the HTTP routes
(`yurt.http.routes_internal`) would send, as decoded JSON, so the client code is the same
for a local and a remote server; anything else goes over HTTP. Writes go over HTTP as well
while the server is an HA follower (the HTTP layer forwards them to the leader)."""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from yurt.api import APIError, AsyncClient
from yurt.api.client import QueryMeta
from yurt.http.alloc_delta import delta_requested, parse_known, wait_node_allocs
from yurt.http.alloc_encoding import job_of
from yurt.server.endpoints import EndpointError, heartbeat_node
from yurt.server.endpoints.nodes import submit_register
from yurt.state.commands import AllocUpdate
from yurt.structs import Node
from yurt.structs.codec import from_wire, to_wire
from yurt.structs.durations import parse_duration

log = logging.getLogger(__name__)
DEFAULT_WAIT = 300.0  # s: a blocking query without `wait` (Nomad's default)
_NODE_ALLOCS = re.compile(r"^/v1/internal/node/([^/]+)/allocs$")
_HEARTBEAT = re.compile(r"^/v1/internal/node/([^/]+)/heartbeat$")

Reply = tuple[Any, QueryMeta]
_WAITS: dict[Any, float] = {}  # `wait` parameter -> seconds: clients send a few values, over and over


def _wait_seconds(value: Any) -> float:
    """The blocking query's `wait` in seconds (DEFAULT_WAIT when absent); ValueError if bad."""
    if not value:
        return DEFAULT_WAIT
    seconds = _WAITS.get(value)
    if seconds is None:
        seconds = parse_duration(value) / 1e9
        if len(_WAITS) >= 64:
            _WAITS.clear()
        _WAITS[value] = seconds
    return seconds


def internal_route(method: str, path: str) -> tuple[str, bool, str] | None:
    """(LocalServerAPI method name, is_write, path argument) of a client-internal route
    served in process (and over RPC, `yurt.rpc`); None for any other request."""
    if method == "GET":
        match = _NODE_ALLOCS.match(path)
        return ("_node_alloc_versions", False, match.group(1)) if match else None
    if method not in ("PUT", "POST"):
        return None
    if path == "/v1/internal/allocs/get":
        return "_allocs_get", False, ""
    if path == "/v1/internal/allocs/update":
        return "_allocs_update", True, ""
    if path == "/v1/internal/node/register":
        return "_node_register", True, ""
    match = _HEARTBEAT.match(path)
    return ("_node_heartbeat", True, match.group(1)) if match else None


class LocalServerAPI:
    """An `AsyncClient` look-alike for the client agent: in process for the internal
    routes of `server`, the wrapped `http` client for the rest."""

    _ROUTES_MAX = 100_000  # cached routes: two per node (its watch and heartbeat paths)

    def __init__(self, server, http: AsyncClient | None):
        self.server = server
        self.http = http  # None: the RPC listener's (`yurt.rpc.server`), which never falls back
        self.config = http.config if http is not None else None
        self._routes: dict[tuple[str, str], tuple | None] = {}

    def _handler(self, method: str, path: str) -> tuple[Callable[..., Awaitable[Reply]], bool, str] | None:
        """(handler, is_write, path argument) for the routes served in process."""
        key = (method, path)
        try:
            return self._routes[key]
        except KeyError:
            pass
        found = internal_route(method, path)
        found = (getattr(self, found[0]), found[1], found[2]) if found else None
        if len(self._routes) >= self._ROUTES_MAX:
            self._routes.clear()
        self._routes[key] = found
        return found

    def _local(self, is_write: bool) -> bool:
        server = self.server
        if server.state is None:
            return False
        return not (is_write and getattr(server, "leadership", None) is not None and not server.leader)

    async def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Reply:
        found = self._handler(method, path)
        if found is None or not self._local(found[1]):
            return await self.http.request(method, path, params, body)
        handler, _, arg = found
        return await self.call(handler, arg, params or {}, body, method, path)

    async def call(self, handler, arg: str, params: dict, body: Any, method: str, path: str) -> Reply:
        """`handler` (of `_handler`), its errors as the HTTP layer answers them (APIError)."""
        try:
            return await handler(arg, params, body)
        except Exception as exc:
            raise self.api_error(exc, method, path) from None

    @staticmethod
    def api_error(exc: Exception, method: str, path: str) -> APIError:
        """The error the HTTP layer would answer for `exc`, raised by a handler."""
        if isinstance(exc, EndpointError):
            return APIError(exc.status, exc.message, method, path)
        if isinstance(exc, msgspec.ValidationError):
            return APIError(400, str(exc), method, path)
        if type(exc).__name__ == "StateError":  # the state refused the command as invalid
            return APIError(400, str(exc), method, path)
        # as the HTTP layer answers: the client's loops retry on 5xx
        log.error("%s %s (in process) failed", method, path, exc_info=exc)
        return APIError(500, str(exc) or type(exc).__name__, method, path)

    # AsyncClient's shorthands, over this class's `request`
    get, put, post, delete = AsyncClient.get, AsyncClient.put, AsyncClient.post, AsyncClient.delete

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- the internal routes ---------------------------------------------------------------

    @staticmethod
    def _meta(index: int) -> QueryMeta:
        return QueryMeta(last_index=max(index, 1), known_leader=True)  # as the HTTP headers say

    async def _node_register(self, _: str, params: dict, body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("Node"):
            raise EndpointError(400, "missing node for client registration")
        index, ttl = await submit_register(self.server, from_wire(body["Node"], Node))
        return {"Index": index, "HeartbeatTTL": ttl}, self._meta(index)

    async def _node_heartbeat(self, node_id: str, params: dict, body: Any) -> Reply:
        return self.heartbeat_now(node_id, body)

    def heartbeat_now(self, node_id: str, body: Any) -> Reply:
        status = body.get("Status", "") if isinstance(body, dict) else ""
        index, ttl = heartbeat_node(self.server, node_id, status or "")
        return {"Index": index, "HeartbeatTTL": ttl}, self._meta(index)

    async def _node_alloc_versions(self, node_id: str, params: dict, body: Any) -> Reply:
        """`{"Allocs": {alloc ID: AllocModifyIndex}}`, once the node's allocs index passes
        `index` or `wait` (plus Nomad's jitter) is over: the blocking query of the route.
        With `delta`: `{"Total": N, "Changed": [Allocation with Job]}` (`http.alloc_delta`)."""
        min_index, wait, known, delta = self.watch_params(params)
        answer = await wait_node_allocs(self.server.state, node_id, min_index, wait, known)
        return self.watch_reply(answer, min_index, delta)

    @staticmethod
    def watch_params(params: dict) -> tuple[int, float, int | None, bool]:
        """(index, wait in seconds, known or None, delta form?) of an alloc watch request;
        EndpointError (400) when one is bad."""
        try:
            min_index = int(params.get("index") or 0)
            wait = _wait_seconds(params.get("wait"))
        except (TypeError, ValueError) as exc:
            raise EndpointError(400, f"Invalid blocking query parameters: {exc}") from None
        if not delta_requested(params.get("delta")):
            return min_index, wait, None, False
        known = params.get("known")
        return min_index, wait, parse_known(None if known is None else str(known)), True

    def watch_reply(self, answer, min_index: int, delta: bool) -> Reply:
        """What a watch request answers once `answer` (`alloc_delta.NodeAllocsAnswer`) is due."""
        if not delta:
            return {"Allocs": answer.versions.to_dict()}, self._meta(answer.index)
        changed = self._with_jobs(answer.snapshot, answer.changed_allocs(min_index))
        return {"Total": len(answer.versions), "Changed": changed}, self._meta(answer.index)

    def _with_jobs(self, snap, allocs: list) -> Any:
        """Allocations with their Job as decoded JSON (a copy: the client never holds the
        server's objects); the RPC listener's subclass answers them encoded instead."""
        replace = msgspec.structs.replace
        return to_wire([replace(a, job=job_of(snap, a)) for a in allocs])

    async def _allocs_get(self, _: str, params: dict, body: Any) -> Reply:
        return self.allocs_get_now(body)

    def allocs_get_now(self, body: Any) -> Reply:
        """Full allocations with their Job, as decoded JSON (a copy: the client never holds
        the server's objects)."""
        snap, found = self.found_allocs(body)
        return self._with_jobs(snap, found), self._meta(snap.table_index("allocs"))

    def found_allocs(self, body: Any) -> tuple[Any, list]:
        """(snapshot, the allocs of `{"AllocIDs": [...]}` it has) for `_allocs_get`."""
        ids = body.get("AllocIDs") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise EndpointError(400, "AllocIDs must be a list of allocation IDs")
        snap = self.server.state.snapshot()
        return snap, [a for a in (snap.alloc_by_id(i) for i in ids) if a is not None]

    async def _allocs_update(self, _: str, params: dict, body: Any) -> Reply:
        index = self.allocs_update_start(body)
        if not isinstance(index, int):
            index = await index
        return {"Index": index}, self._meta(index)

    def allocs_update_start(self, body: Any):
        """Hand the updates of `{"Allocs": [...]}` to the server's batcher: the index that
        carries them (int), or a future of it (`AllocUpdateBatcher.submit_nowait`)."""
        raw = body.get("Allocs") if isinstance(body, dict) else None
        if not raw:
            raise EndpointError(400, "must update at least one allocation")
        return self.allocs_update_decoded(from_wire(raw, list[AllocUpdate]))

    def allocs_update_decoded(self, updates: list):
        if not updates:
            raise EndpointError(400, "must update at least one allocation")
        return self.server.alloc_updates.submit_nowait(updates)


def local_api_wrapper(server, address: str) -> Callable[[AsyncClient], Any]:
    """For `ClientAgent(wrap_api=...)`: the client's API for `address` (this agent's own
    HTTP address) is served in process by `server`."""

    def host_port(addr: str) -> str:
        return addr.split("://", 1)[-1].rstrip("/")

    def wrap(api: AsyncClient):
        return LocalServerAPI(server, api) if host_port(api.config.address) == host_port(address) else api

    return wrap
