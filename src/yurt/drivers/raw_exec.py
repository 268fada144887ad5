"""raw_exec: run a command on the host, without isolation, under a detached supervisor.

Disabled unless the client enables it (plugin "raw_exec" { config { enabled = true } },
or dev mode). Task config: `command` (required), `args`, `work_dir`.
"""

import asyncio
import contextlib
import os
import signal as _signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psutil

from .base import (
    Driver,
    DriverError,
    DriverFingerprint,
    ExecInput,
    ExecOutput,
    ExitResult,
    TaskConfig,
    TaskHandle,
    TaskStatus,
    check_keys,
    parse_signal,
)
from .execproc import exec_process
from .supervisor import (
    EXIT_FILE,
    EXITED,
    HANDLE_FILE,
    SPEC_FILE,
    STARTED,
    STOP_FILE,
    expect,
    forget,
    launch,
    read_json,
    write_json_atomic,
)

CONFIG_SPEC: dict[str, Any] = {
    "command": str,
    "args": list,
    "work_dir": str,
    "oom_score_adj": int,
    "cgroup_v1_override": dict,
    "cgroup_v2_override": str,
    "denied_envvars": list,
}
# `plugin "raw_exec" { config { ... } }` (Nomad's keys; only `enabled` changes what yurt does)
PLUGIN_CONFIG_SPEC: dict[str, Any] = {
    "enabled": bool,
    "no_cgroups": bool,
    "denied_host_uids": str,
    "denied_host_gids": str,
    "denied_envvars": list,
}
START_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
HANDLE_POLL_INTERVAL = 0.01
SUPERVISOR_CHECK_INTERVAL = 1.0  # wait_task: is the supervisor alive (a died one leaves no exit.json)
HANDLE_NOTIFIED_POLL_INTERVAL = 0.1  # the launcher tells of the start; polled in case it cannot
STATE_DIR_NAME = ".yurt"


def supervisor_state_dir(task_dir: str) -> str:
    return os.path.join(task_dir, STATE_DIR_NAME)


def _process_alive(pid: int, started_at_ns: int = 0) -> bool:
    """True if `pid` runs and is not a zombie (and was started before `started_at_ns` + slack)."""
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started_at_ns and proc.create_time() > started_at_ns / 1e9 + 5:
            return False  # the pid was reused by a newer process
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _exit_result(data: dict[str, Any]) -> ExitResult:
    return ExitResult(
        exit_code=int(data.get("exit_code", 0)),
        signal=int(data.get("signal", 0)),
        err=data.get("err", "") or "",
        finished_at=int(data.get("finished_at", 0)),
    )


@contextlib.contextmanager
def _reported(event: str, spec_path: str) -> Iterator[asyncio.Future]:
    """A future done when the supervisor of `spec_path` reports `event` (supervisor.STARTED
    or EXITED) through its launcher; the files stay the record, so callers still poll."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def callback() -> None:  # in the launcher's reader thread
        loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

    expect(event, spec_path, callback)
    try:
        yield future
    finally:
        forget(event, spec_path, callback)


async def _pause(reported: asyncio.Future | None, wait: float, poll: float) -> None:
    """Until `reported` is done, for at most `wait` seconds; `poll` seconds when no report
    is to come (none expected, or it came and the file is still to be read again)."""
    if reported is None or reported.done():
        await asyncio.sleep(poll)
        return
    try:
        await asyncio.wait_for(asyncio.shield(reported), wait)
    except TimeoutError:
        pass


class RawExecDriver(Driver):
    name = "raw_exec"

    def __init__(self, enabled: bool = False):
        self.enabled = enabled

    def fingerprint(self) -> DriverFingerprint:
        if not self.enabled:
            return DriverFingerprint(detected=False, healthy=False, health_description="disabled")
        return DriverFingerprint(
            detected=True, healthy=True, health_description="Healthy", attributes={"driver.raw_exec": "1"}
        )

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        errors = check_keys(config, CONFIG_SPEC, required=("command",))
        for i, arg in enumerate(config.get("args") or []):
            if not isinstance(arg, str):
                errors.append(f'Incorrect attribute value type for "args[{i}]": a string is required')
        return errors

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        if not self.enabled:
            raise DriverError('driver "raw_exec" is disabled on this client')
        errors = self.validate_config(cfg.config)
        if errors:
            raise DriverError("; ".join(errors))
        state_dir = supervisor_state_dir(cfg.task_dir)
        os.makedirs(state_dir, exist_ok=True)
        for name in (HANDLE_FILE, EXIT_FILE, STOP_FILE):
            try:
                os.unlink(os.path.join(state_dir, name))
            except FileNotFoundError:
                pass
        spec_path = os.path.join(state_dir, SPEC_FILE)
        write_json_atomic(spec_path, self._spec(cfg), durable=False)  # see write_json_atomic
        with _reported(STARTED, spec_path) as reported:  # a forked supervisor
            if not launch(spec_path, os.path.dirname(os.path.normpath(cfg.alloc_dir))):
                reported = None
            started = await self._wait_for_handle(state_dir, reported)
        if started.get("error"):
            raise DriverError(started["error"])
        return TaskHandle(
            driver=self.name,
            task_id=cfg.id,
            pid=int(started["pid"]),
            supervisor_pid=int(started["supervisor_pid"]),
            started_at=int(started["started_at"]),
            state={"state_dir": state_dir},
        )

    def _spec(self, cfg: TaskConfig) -> dict[str, Any]:
        command = cfg.config["command"]
        if not os.path.isabs(command):
            local = os.path.join(cfg.task_dir, command)
            if os.path.exists(local):
                command = local
        work_dir = cfg.config.get("work_dir") or cfg.task_dir
        return {
            "command": command,
            "args": [str(a) for a in cfg.config.get("args") or []],
            "env": cfg.env,
            "cwd": work_dir,
            "stdout_base": None if cfg.logs_disabled else cfg.stdout_base,
            "stderr_base": None if cfg.logs_disabled else cfg.stderr_base,
            "max_files": cfg.max_files,
            "max_file_size_mb": cfg.max_file_size_mb,
            "kill_signal": parse_signal(cfg.kill_signal or "SIGINT"),
            "kill_timeout": cfg.kill_timeout,
        }

    async def _wait_for_handle(self, state_dir: str, reported: asyncio.Future | None = None) -> dict[str, Any]:
        """handle.json, once the supervisor wrote it: on its launcher's word (`reported`),
        else found by polling (a supervisor not started by the launcher, or one that died)."""
        deadline = time.monotonic() + START_TIMEOUT
        path = os.path.join(state_dir, HANDLE_FILE)
        while time.monotonic() < deadline:
            data = read_json(path)
            if data is not None:
                return data
            await _pause(reported, HANDLE_NOTIFIED_POLL_INTERVAL, HANDLE_POLL_INTERVAL)
        raise DriverError(f"task supervisor did not start within {START_TIMEOUT:.0f}s")

    def _exit_file(self, handle: TaskHandle) -> str:
        return os.path.join(handle.state["state_dir"], EXIT_FILE)

    def _read_exit(self, handle: TaskHandle) -> ExitResult | None:
        data = read_json(self._exit_file(handle))
        return _exit_result(data) if data is not None else None

    def _supervisor_alive(self, handle: TaskHandle) -> bool:
        return _process_alive(handle.supervisor_pid, handle.started_at)

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        """The exit, as soon as the supervisor reports it through our launcher; exit.json is
        also looked for every POLL_INTERVAL (an open: ~6 us; a supervisor of an earlier
        agent reports to no one), whether the supervisor still lives every
        SUPERVISOR_CHECK_INTERVAL (psutil: ~120 us of CPU, which at every poll cost a node
        with 100 tasks a quarter of a core)."""
        with _reported(EXITED, os.path.join(handle.state["state_dir"], SPEC_FILE)) as exited:
            return await self._wait_for_exit(handle, exited)

    async def _wait_for_exit(self, handle: TaskHandle, exited: asyncio.Future) -> ExitResult:
        loop = asyncio.get_running_loop()
        next_check = loop.time()
        while True:
            result = self._read_exit(handle)
            if result is not None:
                return result
            if loop.time() < next_check:
                await _pause(exited, POLL_INTERVAL, POLL_INTERVAL)
                continue
            next_check = loop.time() + SUPERVISOR_CHECK_INTERVAL
            if not self._supervisor_alive(handle):
                await asyncio.sleep(POLL_INTERVAL)
                result = self._read_exit(handle)
                if result is not None:
                    return result
                if _process_alive(handle.pid, handle.started_at):
                    return ExitResult(exit_code=-1, err="task supervisor died; task left running")
                return ExitResult(exit_code=-1, err="task supervisor died without recording an exit status")
            await _pause(exited, POLL_INTERVAL, POLL_INTERVAL)

    async def stop_task(self, handle: TaskHandle, timeout: int, signal: str) -> None:
        if self._read_exit(handle) is not None:
            return
        write_json_atomic(
            os.path.join(handle.state["state_dir"], STOP_FILE),
            {"signal": parse_signal(signal or "SIGINT"), "timeout": int(timeout)}, durable=False,  # read at once
        )
        try:
            os.kill(handle.supervisor_pid, _signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(self.wait_task(handle), timeout / 1e9 + 5.0)
        except asyncio.TimeoutError:
            for pid in (handle.pid, handle.supervisor_pid):
                try:
                    os.killpg(pid, _signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    async def destroy_task(self, handle: TaskHandle, force: bool = False) -> None:
        if self._read_exit(handle) is None and self._supervisor_alive(handle):
            if not force:
                raise DriverError(f"task {handle.task_id} is still running")
            await self.stop_task(handle, 0, "SIGKILL")

    async def signal_task(self, handle: TaskHandle, signal: str) -> None:
        if self._read_exit(handle) is not None or not _process_alive(handle.pid, handle.started_at):
            raise DriverError(f"task {handle.task_id} is not running")
        sig = parse_signal(signal)
        try:
            os.killpg(handle.pid, sig)
        except (ProcessLookupError, PermissionError):
            os.kill(handle.pid, sig)

    async def recover_task(self, handle: TaskHandle) -> None:
        if self._read_exit(handle) is not None:
            return
        if not self._supervisor_alive(handle):
            raise DriverError(f"supervisor of task {handle.task_id} (pid {handle.supervisor_pid}) is gone")

    def inspect_task(self, handle: TaskHandle) -> TaskStatus:
        result = self._read_exit(handle)
        if result is not None:
            return TaskStatus("exited", handle, result)
        state = "running" if self._supervisor_alive(handle) else "unknown"
        return TaskStatus(state, handle)

    async def exec_streaming(
        self, handle: TaskHandle, command: list[str], tty: bool, stdin: AsyncIterator[ExecInput], output: ExecOutput
    ) -> int:
        """The command runs on the host like the task: its environment and working directory."""
        self._check_exec(handle, command)
        spec = read_json(os.path.join(handle.state["state_dir"], SPEC_FILE)) or {}
        return await exec_process(command, spec.get("env") or {}, spec.get("cwd") or None, tty, stdin, output)

    def _check_exec(self, handle: TaskHandle, command: list[str]) -> None:
        if not command:
            raise DriverError("command is not present")
        if self.inspect_task(handle).state != "running":
            raise DriverError(f'task "{handle.task_id.split("/", 1)[-1]}" is not running')
