"""Client-served routes: `/v1/client/fs/*`, `/v1/client/allocation/{id}/*` (`exec` is a websocket), `/v1/client/stats`.

`client_routes(agent)` returns aiohttp route definitions; the agent package mounts
them on the client's HTTP server (or the dev agent's single server).
"""

import asyncio
import base64
import json
import os
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from aiohttp import WSMsgType, web

from yurt.drivers.base import DriverError, ExecInput

from .alloc_restart import check_restartable, restart_all_tasks
from .allocfs import FSError, file_info, list_dir, resolve
from .allocrunner import AllocRunner
from .logstream import Framer, first_log, stream_file, stream_logs
from .stats import alloc_stats, host_stats

if TYPE_CHECKING:
    from .agent import ClientAgent

TRUE = ("1", "true", "t", "yes", "True", "TRUE")


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _int(request: web.Request, key: str, default: int = 0) -> int:
    raw = request.query.get(key, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(400, f'error parsing {key}: strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def _bool(request: web.Request, key: str) -> bool:
    raw = request.query.get(key, "")
    if raw and raw not in TRUE and raw.lower() not in ("0", "false", "f", "no"):
        raise HTTPError(400, f'Failed to parse {key} field to boolean: strconv.ParseBool: parsing "{raw}": invalid syntax')
    return raw in TRUE


def _origin(request: web.Request) -> str:
    origin = request.query.get("origin", "") or "start"
    if origin not in ("start", "end"):
        raise HTTPError(400, "origin must be start or end")
    return origin


class NotLocal(Exception):
    """The request is for an allocation or node this agent does not run."""


class ClientHandlers:
    def __init__(self, agent: "ClientAgent", has_fallback: bool = False):
        self.agent = agent
        self.has_fallback = has_fallback

    def runner(self, request: web.Request) -> AllocRunner:
        alloc_id = request.match_info.get("alloc_id", "")
        if not alloc_id:
            raise HTTPError(400, "must provide a valid alloc id")
        runner = self.agent.alloc_runner(alloc_id)
        if runner is None or runner.destroyed:
            if self.has_fallback:
                raise NotLocal(alloc_id)
            raise HTTPError(404, f'Unknown allocation "{alloc_id}"')
        return runner

    def _path(self, request: web.Request, required: bool = True) -> tuple[AllocRunner, str, str]:
        runner = self.runner(request)
        path = request.query.get("path", "")
        if not path:
            if required:
                raise HTTPError(400, "must provide a file name")
            path = "/"
        return runner, path, resolve(runner.alloc_dir.root, path)

    async def ls(self, request: web.Request) -> web.Response:
        _, _, full = self._path(request, required=False)
        return web.json_response(list_dir(full))

    async def stat(self, request: web.Request) -> web.Response:
        _, _, full = self._path(request)
        return web.json_response(file_info(full))

    def _regular_file(self, full: str, path: str) -> None:
        if file_info(full)["IsDir"]:
            raise HTTPError(400, f'file "{path}" is a directory')

    async def cat(self, request: web.Request) -> web.Response:
        _, path, full = self._path(request)
        self._regular_file(full, path)
        with open(full, "rb") as f:
            return web.Response(body=f.read(), content_type="text/plain")

    async def readat(self, request: web.Request) -> web.Response:
        _, path, full = self._path(request)
        offset, limit = _int(request, "offset"), _int(request, "limit")
        self._regular_file(full, path)
        with open(full, "rb") as f:
            f.seek(offset)
            data = f.read(limit) if limit > 0 else f.read()
        return web.Response(body=data, content_type="text/plain")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        runner, path, full = self._path(request)
        offset, origin = _int(request, "offset"), _origin(request)
        info = file_info(full)
        if info["IsDir"]:
            raise HTTPError(400, f'file "{path}" is a directory')
        if origin == "end":
            offset = max(info["Size"] - offset, 0)
        resp = await _prepare(request, "application/json")
        rel = os.path.relpath(full, os.path.realpath(runner.alloc_dir.root))
        try:
            await stream_file(Framer(resp, plain=False), full, rel, offset)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    async def logs(self, request: web.Request) -> web.StreamResponse:
        runner = self.runner(request)
        task = request.query.get("task", "")
        if not task:
            raise HTTPError(400, "must provide task name")
        follow, plain = _bool(request, "follow"), _bool(request, "plain")
        log_type = request.query.get("type", "")
        if log_type not in ("stdout", "stderr"):
            raise HTTPError(400, "must provide log type (stdout/stderr)")
        offset, origin = _int(request, "offset"), _origin(request)
        self._check_task_started(runner, task)
        if first_log(runner.alloc_dir.log_dir, task, log_type) is None:
            raise HTTPError(404, f'log entry for task "{task}" and log type "{log_type}" not found')
        resp = await _prepare(request, "text/plain" if plain else "application/json")
        try:
            await stream_logs(Framer(resp, plain), runner.alloc_dir.log_dir, task, log_type, follow, offset, origin)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    def _check_task_started(self, runner: AllocRunner, task: str) -> None:
        if task not in {t.name for t in runner.tasks()}:
            raise HTTPError(404, f'task group "{runner.alloc.task_group}" does not have task with name "{task}"')
        state = runner.task_states.get(task)
        if state is None or state.started_at is None:
            raise HTTPError(404, f'task "{task}" not started yet. No logs available')

    async def alloc_stats(self, request: web.Request) -> web.Response:
        return web.json_response(alloc_stats(self.runner(request), request.query.get("task", "")))

    async def restart(self, request: web.Request) -> web.Response:
        runner = self.runner(request)
        body = await _json_body(request)
        task = body.get("TaskName") or request.query.get("task", "")
        if body.get("AllTasks"):
            if task:
                raise HTTPError(400, "Task name cannot be set when restarting all tasks")
            if why := check_restartable(runner):
                raise HTTPError(500, why)
            await restart_all_tasks(runner)
            return web.json_response({})
        names = [task] if task else [n for n, s in runner.task_states.items() if s.state == "running"]
        if task and task not in runner.task_runners:
            raise HTTPError(400, f'Task "{task}" not found in allocation')
        try:
            for name in names:
                await runner.task_runners[name].restart()
        except DriverError as exc:
            raise HTTPError(500, str(exc)) from None
        return web.json_response({})

    async def signal(self, request: web.Request) -> web.Response:
        runner = self.runner(request)
        body = await _json_body(request)
        sig = body.get("Signal") or "SIGKILL"
        task = body.get("Task") or ""
        if task and task not in runner.task_runners:
            raise HTTPError(400, f'Task "{task}" not found in allocation')
        names = [task] if task else [n for n, s in runner.task_states.items() if s.state == "running"]
        try:
            for name in names:
                await runner.task_runners[name].signal(sig)
        except DriverError as exc:
            raise HTTPError(500, str(exc)) from None
        return web.json_response({})

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """Nomad's `alloc exec` websocket: JSON frames `{"stdin": {"data": b64} | {"close": true}}`,
        `{"tty_size": {"height", "width"}}` in; `{"stdout"|"stderr": {"data": b64}}` and finally
        `{"exited": true, "result": {"exit_code": N}}` out. Errors close the socket with Nomad's
        codes (1011 for a 500, else 1008) and the message as the reason."""
        runner = self.runner(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            task, command, tty = _exec_params(request, runner)
            await ExecSession(ws, runner.task_runners[task], command, tty).run()
        except HTTPError as exc:
            await ws.close(code=ws_close_code(exc.status), message=str(exc).encode()[:120])
        except DriverError as exc:
            await ws.close(code=ws_close_code(500), message=str(exc).encode()[:120])
        return ws

    async def alloc_gc(self, request: web.Request) -> web.Response:
        """Nomad's `/v1/client/allocation/:id/gc`: only a terminal allocation is collected."""
        runner = self.runner(request)
        if not await self.agent.gc.collect(runner.id):
            raise HTTPError(404, f'Unknown allocation "{runner.id}"')
        return web.Response(status=200)

    async def gc_all(self, request: web.Request) -> web.Response:
        """Nomad's `/v1/client/gc[?node_id=]`: collect every terminal allocation of this node."""
        self._check_node(request)
        await self.agent.gc.collect_all()
        return web.Response(status=200)

    def _check_node(self, request: web.Request) -> None:
        node_id = request.query.get("node_id", "")
        if node_id and self.has_fallback and not self.agent.node.id.startswith(node_id):
            raise NotLocal(node_id)

    async def host_stats(self, request: web.Request) -> web.Response:
        self._check_node(request)
        compute = int((self.agent.node.attributes or {}).get("cpu.totalcompute", "0") or 0)
        return web.json_response(host_stats(self.agent.config.alloc_dir, compute))


def _exec_params(request: web.Request, runner: AllocRunner) -> tuple[str, list[str], bool]:
    """Nomad's checks and messages (client/alloc_endpoint.go execImpl)."""
    task = request.query.get("task", "")
    if not task:
        raise HTTPError(400, "must provide task name")
    try:
        command = json.loads(request.query.get("command") or "[]")
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"failed to unmarshal command: {exc}") from None
    if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        raise HTTPError(400, "command must be a JSON array of strings")
    if not command:
        raise HTTPError(400, "command is not present")
    tty = _bool(request, "tty")
    tr = runner.task_runners.get(task)
    if tr is None:
        raise HTTPError(400, f'unknown task name "{task}"')
    if tr.state.started_at is None:
        raise HTTPError(404, f'task "{task}" not started yet.')
    if tr.state.state != "running" or tr.handle is None or tr.driver is None:
        raise HTTPError(404, f'task "{task}" is not running.')
    return task, command, tty


def ws_close_code(status: int) -> int:
    """Nomad's toWsCode: 500 -> 1011 (internal error), anything else -> 1008 (policy violation)."""
    return 1011 if status == 500 else 1008


class ExecSession:
    """One `alloc exec` websocket bound to the task's driver: messages in a queue, output frames
    sent as they come; the command is killed when the user goes away."""

    def __init__(self, ws: web.WebSocketResponse, task_runner, command: list[str], tty: bool):
        self.ws, self.tr, self.command, self.tty = ws, task_runner, command, tty
        self.inputs: asyncio.Queue[ExecInput | None] = asyncio.Queue()
        self.send_lock = asyncio.Lock()

    async def run(self) -> None:
        command = asyncio.create_task(self.tr.driver.exec_streaming(
            self.tr.handle, self.command, self.tty, self._stdin(), self._output))
        reader = asyncio.create_task(self._read_messages(command))
        try:
            code = await command
        except asyncio.CancelledError:
            if reader.done():  # the user went away; nobody to answer
                return
            raise
        finally:
            reader.cancel()
        await self._send({"exited": True, "result": {"exit_code": code}})
        await self.ws.close()

    async def _read_messages(self, command: asyncio.Task) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                command.cancel()
                return
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                self.inputs.put_nowait(_exec_input(json.loads(msg.data)))
            except (ValueError, TypeError, AttributeError):
                continue  # not one of the exec messages: ignored

    async def _stdin(self) -> AsyncIterator[ExecInput]:
        while (message := await self.inputs.get()) is not None:
            yield message

    async def _output(self, stream: str, data: bytes) -> None:
        await self._send({stream: {"data": base64.b64encode(data).decode()}})

    async def _send(self, frame: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_str(json.dumps(frame))


def _exec_input(frame: dict[str, Any]) -> ExecInput:
    stdin = frame.get("stdin") or {}
    size = frame.get("tty_size") or {}
    return ExecInput(
        data=base64.b64decode(stdin.get("data") or ""),
        close=bool(stdin.get("close")),
        tty_size=(int(size.get("height") or 0), int(size.get("width") or 0)) if size else None,
    )


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read() or b"{}")
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"failed to decode request body: {exc}") from None
    return body if isinstance(body, dict) else {}


async def _prepare(request: web.Request, content_type: str) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    return resp


def _guard(handler, fallback=None):
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except NotLocal:
            return await fallback(request)
        except HTTPError as exc:
            return _text(exc.status, str(exc))
        except FSError as exc:
            return _text(exc.status, str(exc))
        except (PermissionError, IsADirectoryError, FileNotFoundError) as exc:
            return _text(404 if isinstance(exc, FileNotFoundError) else 400, str(exc))

    return wrapped


def client_routes(
    agent: "ClientAgent", fallback: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
) -> list[web.RouteDef]:
    """The client routes served by `agent`. With `fallback`, requests for allocations
    (or `?node_id=`) this agent does not run go to `fallback` (e.g. a proxy to the
    owning node) instead of answering 404."""
    h = ClientHandlers(agent, has_fallback=fallback is not None)
    routes: list[web.RouteDef] = []
    for op in ("ls", "stat", "cat", "readat", "stream", "logs"):
        routes.append(web.get(f"/v1/client/fs/{op}/{{alloc_id}}", _guard(getattr(h, op), fallback)))
    routes.append(web.get("/v1/client/allocation/{alloc_id}/stats", _guard(h.alloc_stats, fallback)))
    routes.append(web.get("/v1/client/allocation/{alloc_id}/exec", _guard(h.exec, fallback)))
    for op in ("restart", "signal"):
        for method in (web.post, web.put):
            routes.append(method(f"/v1/client/allocation/{{alloc_id}}/{op}", _guard(getattr(h, op), fallback)))
    routes.append(web.get("/v1/client/stats", _guard(h.host_stats, fallback)))
    # Nomad's handlers for these accept any method (its docs and SDKs use GET; `yurt` uses PUT)
    routes.append(web.route("*", "/v1/client/gc", _guard(h.gc_all, fallback)))
    routes.append(web.route("*", "/v1/client/allocation/{alloc_id}/gc", _guard(h.alloc_gc, fallback)))
    return routes
