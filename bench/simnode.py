"""A light simulated node (like Nomad's nodesim): it speaks the client agent's HTTP routes
(docs/internals.md "Routes the client agent uses") without running anything.

It registers, heartbeats at half the server's TTL, watches `GET /v1/node/:id/allocations`
with a blocking query, and reports every allocation the server wants running as `running`
(and every one it wants stopped as `complete`), batching updates like the real client.
No alloc dirs, no local SQLite, no driver: thousands fit in one process."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import msgspec

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
    Job: msgspec.Raw = msgspec.Raw(b"null")


_decode_allocs = msgspec.json.Decoder(list[_Alloc]).decode
_decode_job = msgspec.json.Decoder(_Job | None).decode


class _AllocVersions(msgspec.Struct):
    Allocs: dict[str, int] | None = None


_decode_versions = msgspec.json.Decoder(_AllocVersions).decode
_encode = msgspec.json.Encoder().encode
_TASK_NAMES: dict[tuple[str, str, int, str], list[str]] = {}


def _task_names(alloc: _Alloc) -> list[str]:
    key = (alloc.Namespace, alloc.JobID, alloc.JobVersion, alloc.TaskGroup)
    names = _TASK_NAMES.get(key)
    if names is None:
        job = _decode_job(alloc.Job)
        groups = [g for g in (job.TaskGroups or ()) if g.Name == alloc.TaskGroup] if job else []
        names = [t.Name for t in groups[0].Tasks or ()] if groups else []
        if len(_TASK_NAMES) > 10_000:
            _TASK_NAMES.clear()
        _TASK_NAMES[key] = names
    return names


def _rfc3339(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def task_states(names: list[str], state: str, now: int | None = None) -> dict[str, Any]:
    now = now or time.time_ns()
    event = {"Type": "Started" if state == "running" else "Terminated", "Time": now,
             "DisplayMessage": "Task started by client" if state == "running" else "Exit Code: 0"}
    out: dict[str, Any] = {"State": state, "Failed": False, "Restarts": 0, "StartedAt": _rfc3339(now),
                           "Events": [event]}
    if state == "dead":
        out["FinishedAt"] = _rfc3339(now)
    return {name: dict(out) for name in names}


@dataclass
class FleetCounters:
    """What the fleet saw: allocs handed to nodes, and status updates the server took."""

    registered: int = 0
    allocs_seen: int = 0
    running_acked: int = 0
    stopped_acked: int = 0
    watch_responses: int = 0
    allocs_pulled: int = 0
    heartbeats: int = 0
    errors: int = 0
    running_times: list[float] = field(default_factory=list)  # monotonic time of each running ack

    def running_ack(self, n: int, at: float) -> None:
        self.running_acked += n
        self.running_times.extend([at] * n)


class SimNode:
    def __init__(self, base: str, http: aiohttp.ClientSession, node_template: dict[str, Any], name: str,
                 counters: FleetCounters, on_change: Callable[[], None] | None = None, legacy_watch: bool = False):
        self.base = base
        self.http = http
        self.id = str(uuid.uuid4())
        self.node = dict(node_template, ID=self.id, SecretID=str(uuid.uuid4()), Name=name, Status="ready")
        self.counters = counters
        self.on_change = on_change or (lambda: None)
        self.heartbeat_ttl = 0.0
        self.alloc_index = 0
        self.reported: dict[str, str] = {}  # alloc id -> client status we reported
        self.seen_index: dict[str, int] = {}  # alloc id -> AllocModifyIndex last pulled
        self.legacy_watch = legacy_watch
        self._pending: dict[str, dict[str, Any]] = {}
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

    async def _put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        async with self.http.put(self.base + path, data=_encode(body), headers=headers) as resp:
            if resp.status == 404:
                raise LookupError(path)
            if resp.status >= 400:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=(await resp.text())[:200])
            return await resp.json()

    # --- registration and heartbeats ----------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                if not self.registered.is_set():
                    resp = await self._put("/v1/internal/node/register", {"Node": self.node})
                    self.counters.registered += 1
                    self.registered.set()
                else:
                    resp = await self._put(f"/v1/internal/node/{self.id}/heartbeat", {"Status": "ready"})
                    self.counters.heartbeats += 1
                self.heartbeat_ttl = (resp.get("HeartbeatTTL") or 0) / 1e9
            except LookupError:
                self.registered.clear()
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.counters.errors += 1
                await asyncio.sleep(RETRY_DELAY)
                continue
            await asyncio.sleep(max(self.heartbeat_ttl / 2, 0.5) if self.heartbeat_ttl else 5.0)

    # --- allocations ----------------------------------------------------------------

    async def _watch_loop(self) -> None:
        """Block on the node's {alloc ID: AllocModifyIndex} map and pull new or changed allocs
        (`/v1/internal/node/:id/allocs` + `/v1/internal/allocs/get`); on a server without
        those routes, watch the full allocs (`/v1/node/:id/allocations`) as before."""
        await self.registered.wait()
        while True:
            try:
                url = self._watch_url()
                async with self.http.get(url, params={"index": str(self.alloc_index), "wait": ALLOC_WAIT}) as resp:
                    body = await resp.read()
                    index = int(resp.headers.get("X-Nomad-Index", "0"))
                    if resp.status == 404 and not self.legacy_watch:
                        self.legacy_watch = True
                        continue
                    resp.raise_for_status()
                self.counters.watch_responses += 1
                if index == self.alloc_index:
                    continue
                allocs = _decode_allocs(body) if self.legacy_watch else await self._pull(_decode_versions(body).Allocs or {})
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, msgspec.DecodeError):
                self.counters.errors += 1
                await asyncio.sleep(RETRY_DELAY)
                continue
            self.alloc_index = index
            self._apply(allocs)

    def _watch_url(self) -> str:
        if self.legacy_watch:
            return f"{self.base}/v1/node/{self.id}/allocations"
        return f"{self.base}/v1/internal/node/{self.id}/allocs"

    async def _pull(self, versions: dict[str, int]) -> list[_Alloc]:
        pull = [aid for aid, index in versions.items() if index > self.seen_index.get(aid, -1)]
        allocs: list[_Alloc] = []
        if pull:
            async with self.http.put(f"{self.base}/v1/internal/allocs/get", data=_encode({"AllocIDs": pull}),
                                     headers={"Content-Type": "application/json"}) as resp:
                resp.raise_for_status()
                allocs = _decode_allocs(await resp.read())
            self.counters.allocs_pulled += len(allocs)
        self.seen_index = versions
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
        states = task_states(_task_names(alloc), "running" if status == "running" else "dead")
        self._pending[alloc.ID] = {"ID": alloc.ID, "ClientStatus": status, "ClientDescription": "",
                                   "TaskStates": states, "DeploymentStatus": None, "NetworkStatus": None}
        self._updates_ready.set()

    async def _update_loop(self) -> None:
        while True:
            await self._updates_ready.wait()
            await asyncio.sleep(UPDATE_INTERVAL)
            batch, self._pending = self._pending, {}
            self._updates_ready.clear()
            try:
                await self._put("/v1/internal/allocs/update", {"Allocs": list(batch.values())})
            except (aiohttp.ClientError, asyncio.TimeoutError, LookupError):
                self.counters.errors += 1
                for alloc_id, update in batch.items():
                    self._pending.setdefault(alloc_id, update)
                self._updates_ready.set()
                await asyncio.sleep(RETRY_DELAY)
                continue
            now = time.monotonic()
            running = sum(1 for u in batch.values() if u["ClientStatus"] == "running")
            self.counters.running_ack(running, now)
            self.counters.stopped_acked += len(batch) - running
            self.on_change()
