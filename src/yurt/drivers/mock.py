"""mock_driver: a driver that runs tasks in-process, for tests and benchmarks.

Config: `run_for` (duration; 0 = exit at once), `exit_code`, `exit_signal`,
`stdout_string`, `stderr_string`, `start_error`, `kill_after` (how long a stop takes).
`alloc exec` echoes: the command line, then stdin as it arrives; exit code 0.
Tasks live in a module-level table keyed by task id, so a new driver instance in the
same process (a simulated agent restart) re-attaches; in another process a task is
rebuilt from its handle (it "ran" from `started_at` for `run_for`).
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from yurt.structs.durations import parse_duration

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
from .logrotate import FileRotator

CONFIG_SPEC: dict[str, Any] = {
    "run_for": (str, int),
    "exit_code": int,
    "exit_signal": int,
    "exit_err_msg": str,
    "stdout_string": str,
    "stderr_string": str,
    "start_error": str,
    "start_error_recoverable": bool,
    "kill_after": (str, int),
    "signal_error": str,
}


@dataclass
class _MockTask:
    run_for_ns: int
    exit_code: int
    exit_signal: int
    kill_after_ns: int
    started_at: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: ExitResult | None = None
    timer: asyncio.TimerHandle | None = None
    signals: list[str] = field(default_factory=list)

    def finish(self, result: ExitResult) -> None:
        if self.result is None:
            result.finished_at = time.time_ns()
            self.result = result
            if self.timer:
                self.timer.cancel()
            self.done.set()


_TASKS: dict[str, _MockTask] = {}


def _duration(config: dict[str, Any], key: str) -> int:
    value = config.get(key) or 0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise DriverError(f'invalid "{key}": {exc}') from None


class MockDriver(Driver):
    name = "mock_driver"

    def fingerprint(self) -> DriverFingerprint:
        return DriverFingerprint(True, True, "Healthy", {"driver.mock_driver": "1"})

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        errors = check_keys(config, CONFIG_SPEC)
        for key in ("run_for", "kill_after"):
            if isinstance(config.get(key), str):
                try:
                    parse_duration(config[key])
                except ValueError as exc:
                    errors.append(f'Invalid value for "{key}": {exc}')
        return errors

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        errors = self.validate_config(cfg.config)
        if errors:
            raise DriverError("; ".join(errors))
        conf = cfg.config
        if conf.get("start_error"):
            raise DriverError(conf["start_error"], recoverable=bool(conf.get("start_error_recoverable")))
        self._write_logs(cfg)
        handle = TaskHandle(
            driver=self.name,
            task_id=cfg.id,
            started_at=time.time_ns(),
            state={
                "run_for": _duration(conf, "run_for"),
                "exit_code": int(conf.get("exit_code", 0)),
                "exit_signal": int(conf.get("exit_signal", 0)),
                "kill_after": _duration(conf, "kill_after"),
            },
        )
        self._attach(handle)
        return handle

    def _write_logs(self, cfg: TaskConfig) -> None:
        if cfg.logs_disabled:
            return
        os.makedirs(cfg.log_dir, exist_ok=True)
        size = cfg.max_file_size_mb * 1024 * 1024
        for key, base in (("stdout_string", cfg.stdout_base), ("stderr_string", cfg.stderr_base)):
            rotator = FileRotator(base, cfg.max_files, size)
            if cfg.config.get(key):
                rotator.write(cfg.config[key].encode())
            rotator.close()

    def _attach(self, handle: TaskHandle) -> _MockTask:
        st = handle.state
        task = _MockTask(st["run_for"], st["exit_code"], st["exit_signal"], st["kill_after"], handle.started_at)
        _TASKS[handle.task_id] = task
        remaining = (handle.started_at + task.run_for_ns - time.time_ns()) / 1e9
        result = ExitResult(exit_code=task.exit_code, signal=task.exit_signal)
        if remaining <= 0:
            task.finish(result)
        else:
            task.timer = asyncio.get_running_loop().call_later(remaining, task.finish, result)
        return task

    def _task(self, handle: TaskHandle) -> _MockTask:
        task = _TASKS.get(handle.task_id)
        if task is None:
            raise DriverError(f"unknown task {handle.task_id}")
        return task

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        task = self._task(handle)
        await task.done.wait()
        assert task.result is not None
        return task.result

    async def stop_task(self, handle: TaskHandle, timeout: int, signal: str) -> None:
        task = self._task(handle)
        if task.result is not None:
            return
        sig = parse_signal(signal or "SIGINT")
        delay = min(task.kill_after_ns, timeout)
        if delay:
            try:
                await asyncio.wait_for(task.done.wait(), delay / 1e9)
            except asyncio.TimeoutError:
                pass
        if task.kill_after_ns > timeout:
            sig = parse_signal("SIGKILL")
        task.finish(ExitResult(exit_code=128 + sig, signal=sig))

    async def destroy_task(self, handle: TaskHandle, force: bool = False) -> None:
        task = _TASKS.get(handle.task_id)
        if task is None:
            return
        if task.result is None:
            if not force:
                raise DriverError(f"task {handle.task_id} is still running")
            task.finish(ExitResult(exit_code=137, signal=9))
        _TASKS.pop(handle.task_id, None)

    async def signal_task(self, handle: TaskHandle, signal: str) -> None:
        task = self._task(handle)
        if task.result is not None:
            raise DriverError(f"task {handle.task_id} is not running")
        parse_signal(signal)
        task.signals.append(signal)

    async def recover_task(self, handle: TaskHandle) -> None:
        if handle.task_id not in _TASKS:
            self._attach(handle)

    def inspect_task(self, handle: TaskHandle) -> TaskStatus:
        task = _TASKS.get(handle.task_id)
        if task is None:
            return TaskStatus("unknown", handle)
        if task.result is not None:
            return TaskStatus("exited", handle, task.result)
        return TaskStatus("running", handle)

    def task_pids(self, handle: TaskHandle) -> list[int]:
        return []

    async def exec_streaming(
        self, handle: TaskHandle, command: list[str], tty: bool, stdin: AsyncIterator[ExecInput], output: ExecOutput
    ) -> int:
        if not command:
            raise DriverError("command is not present")
        if self.inspect_task(handle).state != "running":
            raise DriverError(f'task "{handle.task_id.split("/", 1)[-1]}" is not running')
        await output("stdout", (" ".join(command) + "\n").encode())
        async for message in stdin:
            if message.data:
                await output("stdout", message.data)
            if message.close:
                break
        return 0
