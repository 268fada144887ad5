"""A small fake of the server side of the client-agent routes (docs/internals.md)."""

import asyncio
import re

from aiohttp import web

from yurt.structs import SECOND, generate_uuid
from yurt.structs.alloc import Allocation
from yurt.structs.base import evolve
from yurt.structs.codec import to_wire
from yurt.structs.job import Job, LogConfig, RestartPolicy, Task, TaskGroup


def _wait_seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text or "")
    if not m:
        return 5.0
    value = float(m.group(1))
    return {"ms": value / 1000, "m": value * 60}.get(m.group(2) or "s", value)


class FakeServer:
    def __init__(self, heartbeat_ttl: int = 10 * SECOND):
        self.heartbeat_ttl = heartbeat_ttl
        self.nodes: dict[str, dict] = {}
        self.heartbeats: list[str] = []
        self.allocs: dict[str, Allocation] = {}
        self.updates: list[dict] = []  # every alloc update received, in order
        self.update_calls = 0
        self.reject_updates_with = 0  # an HTTP status to answer updates with (0 = accept)
        self.index = 1
        self._changed = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.address = ""
        self.closing = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_put("/v1/internal/node/register", self.register)
        app.router.add_put("/v1/internal/node/{id}/heartbeat", self.heartbeat)
        app.router.add_get("/v1/node/{id}/allocations", self.node_allocs)
        app.router.add_put("/v1/internal/allocs/update", self.allocs_update)
        return app

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        self.closing = True
        await self.bump()  # release blocking queries
        if self.runner:
            await self.runner.cleanup()

    async def bump(self) -> None:
        async with self._changed:
            self.index += 1
            self._changed.notify_all()

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        node = body["Node"]
        self.nodes[node["ID"]] = node
        await self.bump()
        return web.json_response({"Index": self.index, "HeartbeatTTL": self.heartbeat_ttl})

    async def heartbeat(self, request: web.Request) -> web.Response:
        node_id = request.match_info["id"]
        if node_id not in self.nodes:
            return web.Response(status=404, text=f"node {node_id} not found")
        self.heartbeats.append(node_id)
        return web.json_response({"Index": self.index, "HeartbeatTTL": self.heartbeat_ttl})

    async def node_allocs(self, request: web.Request) -> web.Response:
        node_id = request.match_info["id"]
        min_index = int(request.query.get("index", "0") or 0)
        wait = _wait_seconds(request.query.get("wait", "5s"))
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.index > min_index or self.closing), wait)
            except asyncio.TimeoutError:
                pass
        allocs = [to_wire(a) for a in self.allocs.values() if a.node_id == node_id]
        return web.json_response(allocs, headers={"X-Nomad-Index": str(self.index)})

    async def allocs_update(self, request: web.Request) -> web.Response:
        self.update_calls += 1
        if self.reject_updates_with:
            return web.Response(status=self.reject_updates_with, text="rejected")
        body = await request.json()
        self.updates.extend(body["Allocs"])
        return web.json_response({"Index": self.index})

    # --- test helpers --------------------------------------------------------------

    async def add_alloc(self, alloc: Allocation) -> None:
        self.allocs[alloc.id] = evolve(alloc, alloc_modify_index=self.index + 1, modify_index=self.index + 1)
        await self.bump()

    async def stop_alloc(self, alloc_id: str) -> None:
        a = self.allocs[alloc_id]
        self.allocs[alloc_id] = evolve(a, desired_status="stop", alloc_modify_index=self.index + 1)
        await self.bump()

    def last_update(self, alloc_id: str) -> dict | None:
        for update in reversed(self.updates):
            if update["ID"] == alloc_id:
                return update
        return None

    async def wait_status(self, alloc_id: str, status: str, timeout: float = 20.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            update = self.last_update(alloc_id)
            if update and update["ClientStatus"] == status:
                return update
            await asyncio.sleep(0.05)
        raise AssertionError(f"alloc {alloc_id} never reached {status}: last {self.last_update(alloc_id)}")


def make_alloc(node_id: str, tasks: list[Task], job_type: str = "batch", restart: RestartPolicy | None = None) -> Allocation:
    group = TaskGroup(
        name="g",
        tasks=[evolve(t, log_config=t.log_config or LogConfig()) for t in tasks],
        restart_policy=restart or RestartPolicy(attempts=0, interval=60 * SECOND, delay=SECOND, mode="fail"),
    )
    job = Job(id="example", name="example", type=job_type, task_groups=[group], datacenters=["dc1"])
    return Allocation(
        id=generate_uuid(),
        name="example.g[0]",
        node_id=node_id,
        job_id="example",
        job=job,
        task_group="g",
    )


def raw_task(name: str, script: str, **kw) -> Task:
    return Task(name=name, driver="raw_exec", config={"command": "/bin/sh", "args": ["-c", script]}, **kw)
