"""The `docker` task driver: containers through the Docker Engine API (docker SDK).

A task is one container named `<task>-<alloc_id>`, labelled with the alloc ID, job and task
names. The handle records the container ID; a new agent re-attaches by that ID and never
restarts the container. Logs are copied by a detached log follower (`logfollower.py`).
The state directory `<task_dir>/.yurt` holds the follower's files, `stop.json` (a stop
was requested: exit codes 128+N then report signal N) and `exit.json` (the exit status,
kept so that `wait_task` still answers once the container is removed).
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import psutil

from yurt.drivers.base import (
    Driver,
    DriverError,
    DriverFingerprint,
    ExecInput,
    ExecOutput,
    ExitResult,
    TaskConfig,
    TaskHandle,
    TaskStatus,
    parse_signal,
)
from yurt.drivers.supervisor import read_json, write_json_atomic

from . import images
from .config import DockerPluginConfig, validate_task_config
from .orphans import reap_orphans
from .logfollower import FOLLOWER_DONE_FILE, FOLLOWER_PID_FILE, FOLLOWER_SPEC_FILE, POSITION_FILE, launch_argv
from .spec import build_container_spec, container_name

STATE_DIR_NAME = ".yurt"
EXIT_FILE = "exit.json"
STOP_FILE = "stop.json"
POLL_INTERVAL = 0.05
MAX_POLL_INTERVAL = 1.0
API_TIMEOUT = 30
LOG_DRAIN_TIMEOUT = 3.0
log = logging.getLogger(__name__)


def connect(endpoint: str = "", timeout: int = API_TIMEOUT):
    """A low-level Engine API client (DOCKER_HOST or the default socket unless `endpoint`)."""
    import docker

    if endpoint:
        return docker.APIClient(base_url=endpoint, version="auto", timeout=timeout)
    from docker.utils import kwargs_from_env

    return docker.APIClient(version="auto", timeout=timeout, **kwargs_from_env())


def _state_dir(handle: TaskHandle) -> str:
    return handle.state["state_dir"]


def _parse_finished_at(text: str) -> int:
    from .logfollower import parse_timestamp_ns

    try:
        return parse_timestamp_ns(text) if text and not text.startswith("0001-") else time.time_ns()
    except ValueError:
        return time.time_ns()


def exit_result_from_state(state: dict[str, Any], stop_requested: bool) -> ExitResult:
    """Container `State` -> ExitResult; 128+N is signal N when yurt stopped or killed it."""
    code = int(state.get("ExitCode", 0))
    oom = bool(state.get("OOMKilled", False))
    sig = code - 128 if (stop_requested or oom) and 128 < code <= 128 + 64 else 0
    return ExitResult(
        exit_code=code,
        signal=sig,
        oom_killed=oom,
        err=str(state.get("Error") or ("OOM Killed" if oom else "")),
        finished_at=_parse_finished_at(str(state.get("FinishedAt") or "")),
    )


class DockerDriver(Driver):
    name = "docker"

    def __init__(self, plugin: DockerPluginConfig | None = None, alloc_root: str | None = None):
        """`alloc_root` (the client's `<data_dir>/alloc`): the dangling-container reconciler only
        considers containers started by that client, so clients sharing an engine leave each
        other's containers alone."""
        self.plugin = plugin or DockerPluginConfig()
        self.alloc_root = alloc_root
        self._client = None
        self._pull_client = None
        self._background: set[asyncio.Task] = set()
        self._tracked: set[str] = set()  # task IDs ("<alloc>/<task>") started or recovered, not destroyed
        self._reconciler: asyncio.Task | None = None

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.plugin.endpoint)
        return self._client

    def _puller(self):
        """A client for image pulls: its socket timeout is `pull_activity_timeout`."""
        if self._pull_client is None:
            self._pull_client = connect(self.plugin.endpoint, timeout=max(int(self.plugin.pull_activity_timeout_s), 1))
        return self._pull_client

    # -- fingerprint and config ------------------------------------------------------

    def fingerprint(self) -> DriverFingerprint:
        try:
            client = connect(self.plugin.endpoint, timeout=5)
            version = client.version()
            info = client.info()
        except Exception as exc:  # the engine is absent or does not answer
            return DriverFingerprint(
                detected=False, healthy=False, health_description=f"Failed to connect to docker daemon: {exc}"
            )
        attributes = {
            "driver.docker": "1",
            "driver.docker.version": str(version.get("Version", "")),
            "driver.docker.os_type": str(version.get("Os") or info.get("OSType") or ""),
            "driver.docker.runtimes": ",".join(sorted((info.get("Runtimes") or {}).keys())),
            "driver.docker.privileged.enabled": "true" if self.plugin.allow_privileged else "false",
            "driver.docker.volumes.enabled": "true" if self.plugin.volumes_enabled else "false",
        }
        bridge_ip = _bridge_ip(client)
        if bridge_ip:
            attributes["driver.docker.bridge_ip"] = bridge_ip
        client.close()
        return DriverFingerprint(detected=True, healthy=True, health_description="Healthy", attributes=attributes)

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        return validate_task_config(config)

    # -- start ---------------------------------------------------------------------

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        errors = self.validate_config(cfg.config)
        if errors:
            raise DriverError("; ".join(errors))
        state_dir = os.path.join(cfg.task_dir, STATE_DIR_NAME)
        os.makedirs(state_dir, exist_ok=True)
        await self._drain_logs(state_dir)  # an earlier run's follower finishes its copy first
        for name in (EXIT_FILE, STOP_FILE, POSITION_FILE, FOLLOWER_PID_FILE, FOLLOWER_DONE_FILE, FOLLOWER_SPEC_FILE):
            _unlink(os.path.join(state_dir, name))
        for sub in ("local", "secrets"):
            os.makedirs(os.path.join(cfg.task_dir, sub), exist_ok=True)
        os.makedirs(os.path.join(cfg.alloc_dir, "alloc"), exist_ok=True)
        os.makedirs(cfg.log_dir, exist_ok=True)
        self._tracked.add(cfg.id)  # before the container exists: the reconciler must not take it
        image = await images.ensure_image(self.client, cfg, self.plugin, puller=self._puller())
        spec = build_container_spec(cfg, self.plugin, image, _total_compute_mhz())
        container_id = await asyncio.to_thread(self._create_and_start, spec)
        info = await asyncio.to_thread(self.client.inspect_container, container_id)
        handle = TaskHandle(
            driver=self.name,
            task_id=cfg.id,
            pid=int(info["State"].get("Pid") or 0),
            started_at=time.time_ns(),
            state={
                "state_dir": state_dir,
                "container_id": container_id,
                "container_name": spec.name,
                "image": image,
                "tty": bool(cfg.config.get("tty", False)),
            },
        )
        if not (self.plugin.disable_log_collection or cfg.logs_disabled):
            self._start_log_follower(handle, cfg)
        return handle

    def _create_and_start(self, spec) -> str:
        import docker.errors

        host_config = self.client.create_host_config(**spec.host_config)
        for attempt in range(2):
            try:
                created = self.client.create_container(spec.image, name=spec.name, host_config=host_config, **spec.create)
                break
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and attempt == 0:  # the name is taken: an earlier attempt's container
                    self._remove_stale(spec.name)
                    continue
                raise DriverError(f"failed to create container from image {spec.image}: {exc.explanation or exc}") from exc
        container_id = created["Id"]
        try:
            self.client.start(container_id)
        except docker.errors.APIError as exc:
            self.client.remove_container(container_id, force=True, v=True)
            raise DriverError(f"failed to start container {spec.name}: {exc.explanation or exc}") from exc
        return container_id

    def _remove_stale(self, name: str) -> None:
        """A container left by an earlier attempt of the same task is removed, as Nomad purges it."""
        import docker.errors

        try:
            self.client.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # a removal is already in progress: wait for it
                raise
            for _ in range(100):
                try:
                    self.client.inspect_container(name)
                except docker.errors.NotFound:
                    return
                time.sleep(0.05)

    def _start_log_follower(self, handle: TaskHandle, cfg: TaskConfig | None = None) -> None:
        state_dir = _state_dir(handle)
        spec_path = os.path.join(state_dir, FOLLOWER_SPEC_FILE)
        if cfg is not None:
            write_json_atomic(spec_path, {
                "container_id": handle.state["container_id"],
                "base_url": self.plugin.endpoint,
                "stdout_base": cfg.stdout_base,
                "stderr_base": cfg.stderr_base,
                "max_files": cfg.max_files,
                "max_file_size": cfg.max_file_size_mb * 1024 * 1024,
                "tty": bool(cfg.config.get("tty", False)),
            })
        launch_follower(spec_path, self.alloc_root or "")

    def _follower_pid(self, handle: TaskHandle) -> int:
        return _follower_pid(_state_dir(handle))

    # -- state -----------------------------------------------------------------------

    def _inspect(self, handle: TaskHandle) -> dict[str, Any] | None:
        import docker.errors

        try:
            return self.client.inspect_container(handle.state["container_id"])
        except docker.errors.NotFound:
            return None

    def _recorded_exit(self, handle: TaskHandle) -> ExitResult | None:
        data = read_json(os.path.join(_state_dir(handle), EXIT_FILE))
        if data is None:
            return None
        return ExitResult(**{k: data[k] for k in ExitResult.__dataclass_fields__ if k in data})

    def _stop_requested(self, handle: TaskHandle) -> bool:
        return os.path.exists(os.path.join(_state_dir(handle), STOP_FILE))

    def _observe(self, handle: TaskHandle) -> tuple[str, ExitResult | None]:
        """("running" | "exited" | "unknown", exit result); records an observed exit."""
        recorded = self._recorded_exit(handle)
        if recorded is not None:
            return "exited", recorded
        info = self._inspect(handle)
        if info is None:
            return "unknown", None
        state = info.get("State") or {}
        if state.get("Running") or state.get("Restarting") or state.get("Status") == "created":
            return "running", None
        result = exit_result_from_state(state, self._stop_requested(handle))
        write_json_atomic(os.path.join(_state_dir(handle), EXIT_FILE), result.__dict__)
        return "exited", result

    def inspect_task(self, handle: TaskHandle) -> TaskStatus:
        state, result = self._observe(handle)
        return TaskStatus(state, handle, result)

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        """Waits on the engine's wait route, then inspects the container for its exit status.
        When the wait route cannot be used, or answers while the container still counts as
        running (created, restarting), polls: every POLL_INTERVAL at first, backing off to
        MAX_POLL_INTERVAL."""
        interval = POLL_INTERVAL
        waited = False
        while True:
            state, result = await asyncio.to_thread(self._observe, handle)
            if result is not None:
                return result
            if state == "unknown":
                return ExitResult(exit_code=-1, err=f"container {handle.state['container_id'][:12]} is gone")
            if not waited and await self._engine_wait(handle.state["container_id"]):
                waited = True
                continue
            waited = False
            await asyncio.sleep(interval)
            interval = min(MAX_POLL_INTERVAL, interval * 1.5)

    # -- stop, signal, destroy, recover ----------------------------------------------------

    async def stop_task(self, handle: TaskHandle, timeout: int, signal: str) -> None:
        """The kill signal (the image's STOPSIGNAL when ""), up to `timeout` ns for the exit,
        then SIGKILL: `docker stop -t` with sub-second precision."""
        if (await asyncio.to_thread(self._observe, handle))[0] != "running":
            return
        sig = parse_signal(signal or await asyncio.to_thread(self._stop_signal, handle))
        write_json_atomic(os.path.join(_state_dir(handle), STOP_FILE), {"signal": sig, "timeout": int(timeout)})
        await asyncio.to_thread(self._kill, handle, sig)
        try:
            await asyncio.wait_for(self.wait_task(handle), max(timeout, 0) / 1e9)
        except asyncio.TimeoutError:
            await asyncio.to_thread(self._kill, handle, 9)
            try:
                await asyncio.wait_for(self.wait_task(handle), 10)
            except asyncio.TimeoutError:
                raise DriverError(f"container {handle.state['container_name']} did not stop") from None
        self._remove_after_stop(handle)

    def _remove_after_stop(self, handle: TaskHandle) -> None:
        """A stopped task's container goes once its last lines are copied (in the background:
        the exit is recorded in exit.json, so wait_task and inspect_task still answer)."""
        if not self.plugin.gc_container:
            return
        follower_pid = _follower_pid(_state_dir(handle))
        task = asyncio.get_running_loop().create_task(self._remove_when_drained(handle, follower_pid))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _remove_when_drained(self, handle: TaskHandle, follower_pid: int) -> None:
        deadline = time.monotonic() + LOG_DRAIN_TIMEOUT
        while follower_pid and time.monotonic() < deadline and psutil.pid_exists(follower_pid):
            await asyncio.sleep(0.05)
        try:
            await asyncio.to_thread(self._remove_container, handle)
        except Exception:  # the next destroy_task or the orphan reaper removes it
            pass

    def _stop_signal(self, handle: TaskHandle) -> str:
        """No kill_signal given: the image's STOPSIGNAL, else SIGTERM (as `docker stop`)."""
        info = self._inspect(handle) or {}
        return (info.get("Config") or {}).get("StopSignal") or "SIGTERM"

    def _kill(self, handle: TaskHandle, sig: int) -> None:
        import docker.errors

        try:
            self.client.kill(handle.state["container_id"], signal=sig)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # gone, or no longer running
                raise DriverError(f"failed to signal container: {exc.explanation or exc}") from exc

    async def signal_task(self, handle: TaskHandle, signal: str) -> None:
        sig = parse_signal(signal)
        if (await asyncio.to_thread(self._observe, handle))[0] != "running":
            raise DriverError(f"task {handle.task_id} is not running")
        await asyncio.to_thread(self._kill, handle, sig)

    async def destroy_task(self, handle: TaskHandle, force: bool = False) -> None:
        state, _ = await asyncio.to_thread(self._observe, handle)
        if state == "running":
            if not force:
                raise DriverError(f"task {handle.task_id} is still running")
            await self.stop_task(handle, 0, "SIGKILL")
        await self._drain_logs(_state_dir(handle))
        await asyncio.to_thread(self._remove_container, handle)
        self._tracked.discard(handle.task_id)

    async def _drain_logs(self, state_dir: str) -> None:
        """Let the follower copy the container's last lines before the container goes."""
        if not os.path.exists(os.path.join(state_dir, FOLLOWER_SPEC_FILE)):
            return
        deadline = time.monotonic() + LOG_DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(os.path.join(state_dir, FOLLOWER_DONE_FILE)):
                return
            started = os.path.exists(os.path.join(state_dir, FOLLOWER_PID_FILE))
            if started and not _follower_pid(state_dir):
                return  # died without finishing
            await asyncio.sleep(0.05)
        pid = _follower_pid(state_dir)
        if pid:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass

    def _remove_container(self, handle: TaskHandle) -> None:
        import docker.errors

        if not self.plugin.gc_container:
            return
        try:
            self.client.remove_container(handle.state["container_id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress
                raise

    async def recover_task(self, handle: TaskHandle) -> None:
        """Re-attach by container ID; restart the log follower if it died meanwhile."""
        if not handle.state.get("container_id"):
            raise DriverError(f"task {handle.task_id}: handle has no container ID")
        state, _ = await asyncio.to_thread(self._observe, handle)
        if state == "unknown":
            raise DriverError(f"container {handle.state['container_id'][:12]} of task {handle.task_id} is gone")
        self._tracked.add(handle.task_id)
        if self.plugin.disable_log_collection or self._follower_pid(handle):
            return
        if os.path.exists(os.path.join(_state_dir(handle), FOLLOWER_SPEC_FILE)):
            _unlink(os.path.join(_state_dir(handle), FOLLOWER_DONE_FILE))
            _unlink(os.path.join(_state_dir(handle), FOLLOWER_PID_FILE))
            await asyncio.to_thread(self._start_log_follower, handle)

    # -- dangling containers ------------------------------------------------------------------

    def tracks_alloc(self, alloc_id: str) -> bool:
        """Does a task of this alloc run under this driver (started or recovered, not destroyed)?"""
        return any(task_id.startswith(alloc_id + "/") for task_id in self._tracked)

    def reconcile_dangling(self) -> list[str]:
        """One pass of Nomad's dangling-container reconciler: remove (or with `dry_run` only log)
        yurt's containers of allocs no task of this driver tracks, older than `creation_grace`."""
        removed = reap_orphans(
            self.client, self.tracks_alloc, self.alloc_root, self.plugin.dangling_creation_grace_s,
            dry_run=self.plugin.dangling_dry_run,
        )
        for container_id in removed:
            log.info("docker: %s dangling container %s", "found" if self.plugin.dangling_dry_run else "removed",
                     container_id[:12])
        return removed

    def start_dangling_reconciler(self) -> asyncio.Task | None:
        """Run `reconcile_dangling` every `gc.dangling_containers.period`, the first time after
        max(period, creation_grace) so that a restarted client recovers its tasks first (as Nomad).
        Needs a running event loop; None when `gc.dangling_containers.enabled = false`."""
        if not self.plugin.dangling_enabled:
            return None
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_loop(), name="docker dangling reconciler")
        return self._reconciler

    def stop_dangling_reconciler(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            self._reconciler = None

    async def _reconcile_loop(self) -> None:
        await asyncio.sleep(max(self.plugin.dangling_period_s, self.plugin.dangling_creation_grace_s))
        while True:
            try:
                await asyncio.to_thread(self.reconcile_dangling)
            except Exception as exc:  # the engine went away: try again next period
                log.warning("docker: dangling container reconciliation failed: %s", exc)
            await asyncio.sleep(self.plugin.dangling_period_s)

    # -- exec --------------------------------------------------------------------------------

    async def exec_task(self, handle: TaskHandle, command: list[str], timeout_s: float = 30.0) -> tuple[bytes, bytes, int]:
        """Run `command` inside the running container: (stdout, stderr, exit code)."""
        if not command:
            raise DriverError("exec: a command is required")
        if (await asyncio.to_thread(self._observe, handle))[0] != "running":
            raise DriverError(f"task {handle.task_id} is not running")
        return await asyncio.wait_for(asyncio.to_thread(self._exec, handle, command), timeout_s)

    def _exec(self, handle: TaskHandle, command: list[str]) -> tuple[bytes, bytes, int]:
        import docker.errors

        try:
            exec_id = self.client.exec_create(handle.state["container_id"], command, stdout=True, stderr=True)["Id"]
            stdout, stderr = self.client.exec_start(exec_id, demux=True)
            code = self.client.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.APIError as exc:
            raise DriverError(f"exec failed: {exc.explanation or exc}") from exc
        return stdout or b"", stderr or b"", int(code if code is not None else -1)

    async def exec_streaming(
        self, handle: TaskHandle, command: list[str], tty: bool, stdin: AsyncIterator[ExecInput], output: ExecOutput
    ) -> int:
        """`docker exec -i [-t]`: an exec instance started over a hijacked Engine API connection
        (stdout and stderr arrive multiplexed unless tty); resizes go to the exec's resize route."""
        if not command:
            raise DriverError("command is not present")
        if (await asyncio.to_thread(self._observe, handle))[0] != "running":
            raise DriverError(f'task "{handle.task_id.split("/", 1)[-1]}" is not running')
        exec_id = await asyncio.to_thread(self._exec_create_interactive, handle, command, tty)
        reader, writer = await self._exec_start_hijacked(exec_id, tty)
        feeder = asyncio.create_task(self._feed_exec(exec_id, writer, stdin))
        finished = False
        try:
            await (_copy_raw(reader, output) if tty else _copy_multiplexed(reader, output))
            code = await asyncio.to_thread(self._exec_exit_code, exec_id)
            finished = True
            return code
        finally:
            feeder.cancel()
            writer.close()
            if not finished:  # the user went away: the command does not outlive the session
                await asyncio.to_thread(self._kill_exec, exec_id)

    def _exec_create_interactive(self, handle: TaskHandle, command: list[str], tty: bool) -> str:
        import docker.errors

        try:
            return self.client.exec_create(
                handle.state["container_id"], command, stdin=True, stdout=True, stderr=True, tty=tty
            )["Id"]
        except docker.errors.APIError as exc:
            raise DriverError(f"exec failed: {exc.explanation or exc}") from exc

    def _endpoint(self) -> str:
        return self.plugin.endpoint or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _plain_endpoint(self) -> bool:
        """Can the driver speak raw HTTP to the engine (unix socket or plain tcp, not TLS)?"""
        scheme = urlparse(self._endpoint()).scheme
        return scheme == "unix" or (scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"))

    async def _open_engine(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        url = urlparse(self._endpoint())
        if url.scheme == "unix":
            return await asyncio.open_unix_connection(url.path)
        return await asyncio.open_connection(url.hostname, url.port or 2375)

    async def _engine_wait(self, container_id: str) -> bool:
        """Block until the container is not running: `POST /containers/{id}/wait`, as Nomad's
        driver waits (one idle connection per container, no polling, no thread). An HTTP/1.0
        request: the engine answers at once with its headers and closes the connection after
        the body, when the container has stopped. False when the engine could not be asked
        (the caller polls instead)."""
        if not self._plain_endpoint():
            return False
        try:
            reader, writer = await self._open_engine()
        except OSError:
            return False
        try:
            writer.write(f"POST /containers/{container_id}/wait HTTP/1.0\r\nHost: docker\r\n"
                         f"Content-Length: 0\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.read()  # the body ({"StatusCode": ...}) and EOF once the container stopped
            return head.split(b" ", 2)[1:2] in ([b"200"], [b"404"])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        finally:
            writer.close()

    async def _exec_start_hijacked(self, exec_id: str, tty: bool):
        if not self._plain_endpoint():
            raise DriverError(f"exec: interactive sessions need a unix or plain tcp docker endpoint, not {self._endpoint()}")
        reader, writer = await self._open_engine()
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        writer.write(
            f"POST /v{self.client.api_version}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            f"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
        status = head.split(" ", 2)[1] if head.count(" ") >= 2 else ""
        if status not in ("101", "200"):
            detail = (await reader.read(4096)).decode(errors="replace").strip()
            writer.close()
            raise DriverError(f"exec failed: {head.splitlines()[0]} {detail}".strip())
        return reader, writer

    async def _feed_exec(self, exec_id: str, writer: asyncio.StreamWriter, stdin: AsyncIterator[ExecInput]) -> None:
        try:
            async for message in stdin:
                if message.tty_size:
                    await asyncio.to_thread(self._exec_resize, exec_id, *message.tty_size)
                if message.data:
                    writer.write(message.data)
                    await writer.drain()
                if message.close:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
        except (ConnectionError, OSError):
            return

    def _exec_resize(self, exec_id: str, height: int, width: int) -> None:
        try:
            self.client.exec_resize(exec_id, height=height, width=width)
        except Exception:  # the exec may not run yet, or has ended: a resize is best effort
            pass

    def _exec_exit_code(self, exec_id: str) -> int:
        for _ in range(100):
            info = self.client.exec_inspect(exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code if code is not None else -1)
            time.sleep(0.02)
        return -1

    def _kill_exec(self, exec_id: str) -> None:
        try:
            pid = int(self.client.exec_inspect(exec_id).get("Pid") or 0)
            if pid:
                os.kill(pid, 9)
        except Exception:  # already gone
            pass

    # -- stats -------------------------------------------------------------------------------

    def task_pids(self, handle: TaskHandle) -> list[int]:
        """Host pids of the container's processes (its init and every descendant)."""
        info = self._inspect(handle)
        pid = int(((info or {}).get("State") or {}).get("Pid") or 0)
        if not pid:
            return []
        try:
            return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def container_stats(self, handle: TaskHandle) -> dict[str, Any]:
        """One sample of the engine's stats for the container (memory, cpu, pids)."""
        return self.client.stats(handle.state["container_id"], stream=False)


async def _copy_raw(reader: asyncio.StreamReader, output: ExecOutput) -> None:
    while chunk := await reader.read(65536):
        await output("stdout", chunk)


async def _copy_multiplexed(reader: asyncio.StreamReader, output: ExecOutput) -> None:
    """The Engine's stream format: 8-byte headers (stream 1 = stdout, 2 = stderr; big-endian size)."""
    while True:
        try:
            header = await reader.readexactly(8)
            payload = await reader.readexactly(int.from_bytes(header[4:8], "big"))
        except asyncio.IncompleteReadError:
            return
        await output("stderr" if header[0] == 2 else "stdout", payload)


def _bridge_ip(client) -> str:
    """The default bridge's gateway, else the IPv4 address of its interface (docker0)."""
    try:
        network = client.inspect_network("bridge")
    except Exception:
        return ""
    configs = (network.get("IPAM") or {}).get("Config") or []
    gateway = next((c["Gateway"] for c in configs if c.get("Gateway")), "")
    if gateway:
        return gateway
    interface = (network.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    addresses = psutil.net_if_addrs().get(interface) or []
    return next((a.address for a in addresses if a.family == socket.AF_INET), "")


def _total_compute_mhz() -> int:
    try:
        freq = psutil.cpu_freq()
        mhz = int(freq.max or freq.current) if freq else 0
    except (FileNotFoundError, AttributeError, NotImplementedError):
        mhz = 0
    return (mhz or 1000) * (os.cpu_count() or 1)


_follower_launchers: dict[str, subprocess.Popen] = {}
_follower_launchers_lock = threading.Lock()
MAX_FOLLOWER_LAUNCHERS = 4


def launch_follower(spec_path: str, marker: str) -> None:
    """Start a detached log follower for `spec_path`: through this process's follower launcher
    for `marker` (started on first use, again if it died), else as a process of its own."""
    line = os.fsencode(os.path.abspath(spec_path)) + b"\n"
    with _follower_launchers_lock:
        for _ in range(2):
            launcher = _follower_launchers.get(marker)
            if launcher is None or launcher.poll() is not None:
                while len(_follower_launchers) >= MAX_FOLLOWER_LAUNCHERS:  # e.g. many test drivers
                    _follower_launchers.pop(next(iter(_follower_launchers))).stdin.close()  # it exits
                launcher = _follower_launchers[marker] = subprocess.Popen(
                    launch_argv("--zygote", marker), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            try:
                launcher.stdin.write(line)
                launcher.stdin.flush()
                return
            except OSError:  # it died: start another
                _follower_launchers.pop(marker, None)
    subprocess.Popen(launch_argv(spec_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True).wait()


def _follower_pid(state_dir: str) -> int:
    """The live log follower's pid, else 0."""
    data = read_json(os.path.join(state_dir, FOLLOWER_PID_FILE)) or {}
    pid = int(data.get("pid") or 0)
    try:
        proc = psutil.Process(pid) if pid else None
        if proc is None or proc.status() == psutil.STATUS_ZOMBIE:
            return 0
        if "logfollower" not in " ".join(proc.cmdline()):
            return 0  # the pid was reused
        return pid
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["DockerDriver", "connect", "container_name", "exit_result_from_state"]
