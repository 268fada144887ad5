"""A light simulated node (like Nomad's nodesim): it speaks the client agent's HTTP routes
(docs/internals.md "Routes the client agent uses") without running anything.

It registers, heartbeats at half the server's TTL, blocks on its allocs
(`GET /v1/internal/node/:id/allocs?delta=1`: the new or changed ones in full), and reports every
allocation the server wants running as `running` (and every one it wants stopped as
`complete`), batching updates 0.2 s like the real client. No alloc dirs, no local SQLite,
no driver: thousands fit in one process. Each node keeps one RPC connection
(`bench.simrpc.RPCChannel`, the real client's transport) that all its requests share."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .simhttp import ChannelStats, Response
from .simrpc import RPCChannel

# What one simulated node offers: 200 tiny tasks (bench/jobs.py) fit with room to spare.
SIM_NODE_CPU = 8000  # MHz
SIM_NODE_MEMORY_MB = 16384
SIM_NODE_DISK_MB = 100_000
UPDATE_INTERVAL = 0.2  # seconds between batched alloc updates, as the real client
RETRY_DELAY = 1.0
ALLOC_WAIT = "30s"


class _Task(msgspec.Struct):
    Name: str = ""


class _Group(msgspec.Struct):
    Name: str = ""
    Tasks: list[_Task] | None = None


class _Job(msgspec.Struct):
    TaskGroups: list[_Group] | None = None


class _Alloc(msgspec.Struct):
    """The few fields of a full allocation a simulated node needs (others are skipped; the
    job stays raw JSON and is decoded once per job version, for its task names)."""

    ID: str
    DesiredStatus: str = ""
    ClientStatus: str = ""
    TaskGroup: str = ""
    Namespace: str = ""
    JobID: str = ""
    JobVersion: int = 0
    AllocModifyIndex: int = 0
    Job: msgspec.Raw = msgspec.Raw(b"\xc0")  # msgpack nil


# the bodies are msgpack, as the real client's over RPC (bench.simrpc)
_decode_allocs = msgspec.msgpack.Decoder(list[_Alloc]).decode
_decode_job = msgspec.msgpack.Decoder(_Job | None).decode


class _AllocVersions(msgspec.Struct):
    Allocs: dict[str, int] | None = None


_decode_versions = msgspec.msgpack.Decoder(_AllocVersions).decode


class _AllocDelta(msgspec.Struct):
    """The delta form of the watch (`yurt.http.alloc_delta`); `Changed` None: a server
    without it, which answered the full map (`Allocs`)."""

    Changed: list[_Alloc] | None = None
    Total: int = 0
    Allocs: dict[str, int] | None = None


_decode_delta = msgspec.msgpack.Decoder(_AllocDelta).decode


class _HeartbeatReply(msgspec.Struct):
    HeartbeatTTL: int = 0


_decode_ttl = msgspec.msgpack.Decoder(_HeartbeatReply).decode
_encode = msgspec.msgpack.Encoder().encode
_TASK_NAMES: dict[tuple[str, str, int, str], tuple[str, ...]] = {}


def _task_names(alloc: _Alloc) -> tuple[str, ...]:
    key = (alloc.Namespace, alloc.JobID, alloc.JobVersion, alloc.TaskGroup)
    names = _TASK_NAMES.get(key)
    if names is None:
        job = _decode_job(alloc.Job)
        groups = [g for g in (job.TaskGroups or ()) if g.Name == alloc.TaskGroup] if job else []
        names = tuple(t.Name for t in groups[0].Tasks or ()) if groups else ()
        if len(_TASK_NAMES) > 10_000:
            _TASK_NAMES.clear()
        _TASK_NAMES[key] = names
    return names


def _rfc3339(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).isoformat().replace("+00:00", "Z")


def task_states(names: list[str] | tuple[str, ...], state: str, now: int | None = None) -> dict[str, Any]:
    now = now or time.time_ns()
    event = {"Type": "Started" if state == "running" else "Terminated", "Time": now,
             "DisplayMessage": "Task started by client" if state == "running" else "Exit Code: 0"}
    out: dict[str, Any] = {"State": state, "Failed": False, "Restarts": 0, "StartedAt": _rfc3339(now),
                           "Events": [event]}
    if state == "dead":
        out["FinishedAt"] = _rfc3339(now)
    return {name: out for name in names}  # read-only: the same state object for every task


class _BatchStates:
    """Task states of one update batch, built once per (task names, state): every alloc of
    a batch reports the same time, so equal allocs share one (read-only) dict."""

    __slots__ = ("cache", "now")

    def __init__(self) -> None:
        self.now = time.time_ns()
        self.cache: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}

    def get(self, names: tuple[str, ...], state: str) -> dict[str, Any]:
        key = (names, state)
        states = self.cache.get(key)
        if states is None:
            states = self.cache[key] = task_states(names, state, self.now)
        return states


class HTTPStatusError(Exception):
    def __init__(self, path: str, resp: Response):
        super().__init__(f"{path}: HTTP {resp.status}: {resp.body[:200]!r}")
        self.status = resp.status


_NET_ERRORS = (OSError, TimeoutError, HTTPStatusError)  # ConnectionClosed is an OSError


@dataclass
class FleetCounters:
    """What the fleet saw: allocs handed to nodes, status updates the server took, and how
    the heartbeats kept up (a node whose gap exceeds its TTL + grace is marked down)."""

    registered: int = 0
    allocs_seen: int = 0
    running_acked: int = 0
    stopped_acked: int = 0
    watch_responses: int = 0
    allocs_pulled: int = 0
    heartbeats: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    heartbeat_max_latency_s: float = 0.0  # slowest register/heartbeat request
    heartbeat_max_overdue_s: float = 0.0  # latest heartbeat past its TTL (a miss if > grace)
    running_times: list[float] = field(default_factory=list)  # monotonic time of each running ack
    http: ChannelStats = field(default_factory=ChannelStats)

    def running_ack(self, n: int, at: float) -> None:
        self.running_acked += n
        self.running_times.extend([at] * n)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        kind = type(exc).__name__
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def figures(self) -> dict[str, Any]:
        return {"fleet_errors": self.errors, "fleet_error_kinds": dict(self.error_kinds),
                "fleet_connects": self.http.connects, "fleet_requests": self.http.requests,
                "heartbeat_max_latency_s": round(self.heartbeat_max_latency_s, 2),
                "heartbeat_max_overdue_s": round(self.heartbeat_max_overdue_s, 2)}


class SimNode:
    def __init__(self, base: str, node_template: dict[str, Any], name: str, counters: FleetCounters,
                 on_change: Callable[[], None] | None = None, legacy_watch: bool = False,
                 rpc: tuple[int, str] = (0, "")):
        host, _, port = base.split("://", 1)[-1].rstrip("/").rpartition(":")
        # one RPC connection (`rpc`: the server's listener port and ID) for the watch and pulls
        # as for register, heartbeats and updates, multiplexed as the real client's
        self.http = self.watch_http = RPCChannel(host, int(port), rpc, counters.http)
        self.id = str(uuid.uuid4())
        self.node = dict(node_template, ID=self.id, SecretID=str(uuid.uuid4()), Name=name, Status="ready")
        self.counters = counters
        self.on_change = on_change or (lambda: None)
        self.heartbeat_ttl = 0.0
        self.alloc_index = 0
        self.reported: dict[str, str] = {}  # alloc id -> client status we reported
        self.seen_index: dict[str, int] = {}  # alloc id -> AllocModifyIndex last pulled
        self.seen_all = False  # seen_index holds all of the node's allocs at alloc_index
        self.legacy_watch = legacy_watch
        self._pending: dict[str, tuple[tuple[str, ...], str]] = {}  # alloc id -> (task names, client status)
        self._updates_ready = asyncio.Event()
        self.registered = asyncio.Event()
        self._loops: list[asyncio.Task] = []

    def start(self) -> None:
        self._loops = [asyncio.create_task(self._heartbeat_loop()), asyncio.create_task(self._watch_loop()),
                       asyncio.create_task(self._update_loop())]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        self.http.close()
        self.watch_http.close()

    async def _put(self, path: str, body: dict[str, Any]) -> bytes:
        resp = await self.http.request("PUT", path, _encode(body))
        if resp.status == 404:
            raise LookupError(path)
        if resp.status >= 400:
            raise HTTPStatusError(path, resp)
        return resp.body

    # --- registration and heartbeats ----------------------------------------------

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = 0.0  # when the server's deadline (TTL) of the last heartbeat passes
        while True:
            sent = loop.time()
            try:
                if not self.registered.is_set():
                    resp = await self._put("/v1/internal/node/register", {"Node": self.node})
                    self.counters.registered += 1
                    self.registered.set()
                else:
                    resp = await self._put(f"/v1/internal/node/{self.id}/heartbeat", {"Status": "ready"})
                    self.counters.heartbeats += 1
                self.heartbeat_ttl = (_decode_ttl(resp).HeartbeatTTL or 0) / 1e9
            except LookupError:
                self.registered.clear()
                continue
            except _NET_ERRORS as exc:
                self.counters.error(exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            now = loop.time()
            counters = self.counters
            counters.heartbeat_max_latency_s = max(counters.heartbeat_max_latency_s, now - sent)
            if due:
                counters.heartbeat_max_overdue_s = max(counters.heartbeat_max_overdue_s, now - due)
            due = now + self.heartbeat_ttl
            await asyncio.sleep(max(self.heartbeat_ttl / 2, 0.5) if self.heartbeat_ttl else 5.0)

    # --- allocations ----------------------------------------------------------------

    async def _watch_loop(self) -> None:
        """As the real client (`ClientAgent._watch_allocs`): block on the node's allocs in the
        delta form (`?delta=1&known=K`: the allocs changed since our index in full, and the
        node's alloc count), falling back to the {alloc ID: AllocModifyIndex} map + a pull of
        the changed allocs (`/v1/internal/allocs/get`) when the count shows a removal we did
        not see; on a server without those routes, watch the full allocs
        (`/v1/node/:id/allocations`) as before."""
        await self.registered.wait()
        while True:
            try:
                since = self.alloc_index
                path = self._watch_path()
                query = f"?index={since}&wait={ALLOC_WAIT}"
                if not self.legacy_watch and (self.seen_all or since <= 0):
                    query += f"&delta=1&known={len(self.seen_index)}"
                resp = await self.watch_http.request("GET", path + query)
                if resp.status == 404 and not self.legacy_watch:
                    self.legacy_watch = True
                    continue
                if not resp.ok():
                    raise HTTPStatusError(path, resp)
                self.counters.watch_responses += 1
                if resp.index == since:
                    continue
                index = resp.index
                if self.legacy_watch:
                    allocs = _decode_allocs(resp.body)
                else:
                    allocs, index = await self._delta(resp, since)
            except (*_NET_ERRORS, ValueError, msgspec.DecodeError) as exc:
                self.counters.error(exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            self.alloc_index = index
            self._apply(allocs)

    def _watch_path(self) -> str:
        if self.legacy_watch:
            return f"/v1/node/{self.id}/allocations"
        return f"/v1/internal/node/{self.id}/allocs"

    async def _delta(self, resp: Response, since: int) -> tuple[list[_Alloc], int]:
        """The new or changed allocs of a watch answer and its index; the full map and a pull
        when the answer's count shows a removal (or its index went back)."""
        delta = _decode_delta(resp.body)
        if delta.Changed is None:  # a server without the delta form: the full map
            return await self._pull(delta.Allocs or {}), resp.index
        seen = self.seen_index
        added = sum(1 for a in delta.Changed if a.ID not in seen)
        if since > 0 and (resp.index < since or len(seen) + added != delta.Total):
            full = await self.watch_http.request("GET", f"{self._watch_path()}?index=0")
            if not full.ok():
                raise HTTPStatusError(self._watch_path(), full)
            return await self._pull(_decode_versions(full.body).Allocs or {}), full.index
        if since <= 0:
            seen.clear()
        for alloc in delta.Changed:
            seen[alloc.ID] = alloc.AllocModifyIndex
        self.counters.allocs_pulled += len(delta.Changed)
        self.seen_all = True
        return delta.Changed, resp.index

    async def _pull(self, versions: dict[str, int]) -> list[_Alloc]:
        seen = self.seen_index
        pull = [aid for aid, index in versions.items() - seen.items() if index > seen.get(aid, -1)]
        allocs: list[_Alloc] = []
        if pull:
            resp = await self.watch_http.request("PUT", "/v1/internal/allocs/get", _encode({"AllocIDs": pull}))
            if not resp.ok():
                raise HTTPStatusError("/v1/internal/allocs/get", resp)
            allocs = _decode_allocs(resp.body)
            self.counters.allocs_pulled += len(allocs)
        self.seen_index = versions
        self.seen_all = True
        return allocs

    def _apply(self, allocs: list[_Alloc]) -> None:
        for alloc in allocs:
            reported = self.reported.get(alloc.ID)
            if alloc.DesiredStatus == "run" and reported is None and alloc.ClientStatus == "pending":
                self.counters.allocs_seen += 1
                self._queue(alloc, "running")
            elif alloc.DesiredStatus in ("stop", "evict") and reported == "running":
                self._queue(alloc, "complete")

    def _queue(self, alloc: _Alloc, status: str) -> None:
        self.reported[alloc.ID] = status
        self._pending[alloc.ID] = (_task_names(alloc), status)
        self._updates_ready.set()

    def _update_body(self, batch: dict[str, tuple[tuple[str, ...], str]]) -> bytes:
        states = _BatchStates()
        return _encode({"Allocs": [
            {"ID": alloc_id, "ClientStatus": status, "ClientDescription": "",
             "TaskStates": states.get(names, "running" if status == "running" else "dead"),
             "DeploymentStatus": None, "NetworkStatus": None}
            for alloc_id, (names, status) in batch.items()]})

    async def _update_loop(self) -> None:
        while True:
            await self._updates_ready.wait()
            await asyncio.sleep(UPDATE_INTERVAL)
            batch, self._pending = self._pending, {}
            self._updates_ready.clear()
            try:
                resp = await self.http.request("PUT", "/v1/internal/allocs/update", self._update_body(batch))
                if not resp.ok():
                    raise HTTPStatusError("/v1/internal/allocs/update", resp)
            except _NET_ERRORS as exc:
                self.counters.error(exc)
                for alloc_id, update in batch.items():
                    self._pending.setdefault(alloc_id, update)
                self._updates_ready.set()
                await asyncio.sleep(RETRY_DELAY)
                continue
            now = time.monotonic()
            running = sum(1 for _, status in batch.values() if status == "running")
            self.counters.running_ack(running, now)
            self.counters.stopped_acked += len(batch) - running
            self.on_change()
