"""Runs one task of an allocation: setup, start, wait, restart per policy, kill.

The decisions (restart or not, state transitions, event text) come from
`yurt.client.lifecycle`; this module does the IO: driver calls, sleeps, persistence.
"""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from yurt.drivers.base import (
    Driver,
    DriverError,
    ExitResult,
    MountConfig,
    TaskConfig,
    TaskHandle,
)
from yurt.structs.alloc import (
    TASK_STATE_DEAD,
    TASK_STATE_PENDING,
    TASK_STATE_RUNNING,
    TaskState,
)
from yurt.structs.base import evolve
from yurt.structs.durations import format_duration
from yurt.structs.job import Task

from . import lifecycle as lc
from . import template_watch
from .artifacts import ArtifactError, fetch_task_artifacts
from .taskenv import (
    build_task_env,
    interpolate,
    interpolate_config,
    interpolation_variables,
)
from .templates import TaskTemplates, TemplateError
from .volumes import VolumeError, host_volume_mounts

if TYPE_CHECKING:
    from .allocrunner import AllocRunner

log = logging.getLogger(__name__)
DEFAULT_KILL_TIMEOUT = 5_000_000_000
TASK_HOOK_FAILED = "Task hook failed"  # Nomad's task event types of the prestart hooks
TASK_DOWNLOADING_ARTIFACTS = lc.TASK_DOWNLOADING_ARTIFACTS
TASK_ARTIFACT_DOWNLOAD_FAILED = lc.TASK_ARTIFACT_DOWNLOAD_FAILED


class TaskRunner:
    def __init__(
        self,
        alloc_runner: "AllocRunner",
        task: Task,
        driver: Driver | None,
        state: TaskState | None = None,
        handle: TaskHandle | None = None,
        on_state: Callable[[str, TaskState], None] | None = None,
    ):
        self.ar = alloc_runner
        self.task = task
        self.driver = driver
        self.state = state or TaskState()
        self.handle = handle
        self._on_state = on_state
        job = alloc_runner.alloc.job
        policy = task.restart_policy or (job.lookup_task_group(alloc_runner.alloc.task_group).restart_policy if job else None)
        job_type = job.type if job else "service"
        self.restarts = lc.RestartTracker(policy or lc.default_restart_policy(job_type), job_type, random.Random())
        hook = lc.task_hook(task)  # Nomad: poststop tasks, and prestart/poststart ones that are no sidecar, end on success
        self.restarts.ephemeral_hook = hook == lc.HOOK_POSTSTOP or hook in (lc.HOOK_PRESTART, lc.HOOK_POSTSTART) and not lc._is_sidecar(task)
        self._kill_event = asyncio.Event()
        self._restart_requested = ""  # the restart reason while a requested restart is under way
        self._killing = False
        self._template_watch: asyncio.Task | None = None
        self.done = asyncio.Event()
        self.released = asyncio.Event()  # set by the alloc runner when lifecycle hooks allow a start
        self.env: dict[str, str] = {}
        self.mounts: list[MountConfig] = []  # host volume mounts, resolved in prestart
        self._artifacts_done: set[int] = set()

    @property
    def name(self) -> str:
        return self.task.name

    # --- state ---------------------------------------------------------------

    def emit(self, event_type: str, new_state: str | None = None, display: str = "", **fields) -> None:
        ev = lc.new_event(event_type, time.time_ns(), **fields)
        if display:
            ev = evolve(ev, display_message=display)
        self.state = lc.apply_event(self.state, ev, new_state)
        if self._on_state:
            self._on_state(self.name, self.state)

    def _set_handle(self, handle: TaskHandle | None) -> None:
        self.handle = handle
        self.ar.ctx.state.put_task_handle(self.ar.alloc.id, self.name, handle.to_dict() if handle else None)

    @property
    def kill_timeout(self) -> int:
        timeout = self.task.kill_timeout or DEFAULT_KILL_TIMEOUT
        return min(timeout, self.ar.ctx.config.max_kill_timeout)

    # --- main loop -------------------------------------------------------------

    async def run(self) -> None:
        try:
            if self.state.state == TASK_STATE_DEAD:
                return
            if self.handle is not None and await self._recover():
                self._template_watch = template_watch.resume_watch(self)
                if not await self._wait_and_decide():
                    return
            elif not self.state.events:
                self.emit(lc.TASK_RECEIVED)
            if not await self._wait_for_release():
                self._finish_killed()
                return
            await self._run_loop()
        finally:
            template_watch.stop_watch(self._template_watch)
            self.done.set()

    async def _wait_for_release(self) -> bool:
        """Wait until the alloc runner lets this task start; False if killed first."""
        if self.released.is_set():
            return True
        released = asyncio.create_task(self.released.wait())
        killed = asyncio.create_task(self._kill_event.wait())
        try:
            await asyncio.wait({released, killed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            killed.cancel()
        return self.released.is_set() and not self._kill_event.is_set()

    async def _recover(self) -> bool:
        assert self.handle is not None
        try:
            if self.driver is None:
                raise DriverError(f'driver "{self.handle.driver}" is not available')
            await self.driver.recover_task(self.handle)
            return True
        except DriverError as exc:
            log.warning("task %s/%s: could not recover (%s); starting it again", self.ar.alloc.id, self.name, exc)
            self._set_handle(None)
            return False

    async def _run_loop(self) -> None:
        while not self._kill_event.is_set():
            started = await self._start()
            if started is None:
                return
            if not started:
                continue
            if not await self._wait_and_decide():
                return
        self._finish_killed()

    async def _start(self) -> bool | None:
        """True = running, False = start failed but will retry, None = finished (dead)."""
        template_watch.stop_watch(self._template_watch)
        if not self._setup():
            return None
        if (ready := await self._prestart_inputs()) is not True:
            return ready
        try:
            cfg = self._task_config()
            templates = TaskTemplates(self.task.templates, cfg.task_dir)
            cfg.env.update(templates.render_all(cfg.env))
        except TemplateError as exc:  # Nomad's template hook kills the task on a failed first render
            self.emit(lc.TASK_KILLING, display=f"Template failed: {exc}", fails_task=True)
            self.emit(lc.TASK_KILLED, TASK_STATE_DEAD)
            return None
        try:
            if self.driver is None:
                raise DriverError(f'driver "{self.task.driver}" is not available on this node')
            handle = await self.driver.start_task(cfg)
        except DriverError as exc:
            self.emit(lc.TASK_DRIVER_FAILURE, driver_error=str(exc), fails_task=False)
            decision = self.restarts.on_start_error(time.time_ns(), exc.recoverable)
            return False if await self._apply_decision(decision) else None
        self._set_handle(handle)
        self.emit(lc.TASK_STARTED, TASK_STATE_RUNNING)
        self._template_watch = template_watch.start_watch(self, templates)
        if self._kill_event.is_set():  # a kill arrived while the driver was starting it
            await self.driver.stop_task(handle, self.kill_timeout, self.task.kill_signal or "SIGINT")
        return True

    def _setup(self) -> bool:
        ad = self.ar.alloc_dir
        self.emit(lc.TASK_SETUP, message="Building Task Directory")
        try:
            ad.build_task(self.name)
        except OSError as exc:
            self.emit(lc.TASK_SETUP_FAILURE, TASK_STATE_DEAD, setup_error=str(exc), fails_task=True)
            return False
        errors = self.driver.validate_config(self.task.config or {}) if self.driver else []
        if errors:
            self.emit(lc.TASK_FAILED_VALIDATION, TASK_STATE_DEAD, validation_error="; ".join(errors), fails_task=True)
            return False
        return True

    async def _prestart_inputs(self) -> bool | None:
        """Nomad's dispatch_payload, volumes and artifacts prestart hooks (before templates).
        True when done; otherwise what `_start` returns after the failure."""
        ar, task, ad = self.ar, self.task, self.ar.alloc_dir
        try:
            self.mounts = host_volume_mounts(ar.alloc, task, ar.ctx.node.host_volumes if ar.ctx.node else None)
            if task.dispatch_payload and task.dispatch_payload.file and ar.alloc.job and ar.alloc.job.payload:
                ad.write_local_file(task.name, task.dispatch_payload.file, ar.alloc.job.payload)
        except (VolumeError, OSError) as exc:
            hook = "volumes" if isinstance(exc, VolumeError) else "dispatch_payload"
            self.emit(TASK_HOOK_FAILED, message=f"{hook}: {exc}")
            return False if await self._apply_decision(self.restarts.on_start_error(time.time_ns(), False)) else None
        if task.artifacts and len(self._artifacts_done) < len(task.artifacts):
            self.emit(TASK_DOWNLOADING_ARTIFACTS)
            env = build_task_env(ar.alloc, task, ar.ctx.node, ad, host_env=ar.ctx.config.host_env())
            variables = interpolation_variables(env, ar.ctx.node)
            try:
                await asyncio.to_thread(fetch_task_artifacts, task.artifacts, lambda text: interpolate(text, variables),
                                        ad.task_dir(task.name), ad.root, self._artifacts_done)
            except ArtifactError as exc:
                self.emit(TASK_ARTIFACT_DOWNLOAD_FAILED, download_error=str(exc))
                decision = self.restarts.on_start_error(time.time_ns(), exc.recoverable)
                return False if await self._apply_decision(decision) else None
        return True

    def _task_config(self) -> TaskConfig:
        ctx, ad, task = self.ar.ctx, self.ar.alloc_dir, self.task
        self.env = build_task_env(self.ar.alloc, task, ctx.node, ad, host_env=ctx.config.host_env())
        config = interpolate_config(dict(task.config or {}), interpolation_variables(self.env, ctx.node))
        logs = task.log_config
        return TaskConfig(
            alloc_id=self.ar.alloc.id,
            task_name=task.name,
            config=config,
            env=self.env,
            alloc_dir=ad.root,
            task_dir=ad.task_dir(task.name),
            log_dir=ad.log_dir,
            max_files=logs.max_files if logs else 10,
            max_file_size_mb=logs.max_file_size_mb if logs else 10,
            kill_signal=task.kill_signal or "SIGINT",
            kill_timeout=self.kill_timeout,
            user=task.user,
            logs_disabled=bool(logs and logs.disabled),
            cpu_shares=int(self.env.get("NOMAD_CPU_LIMIT", "0") or 0),
            memory_mb=int(self.env.get("NOMAD_MEMORY_LIMIT", "0") or 0),
            memory_max_mb=int(self.env.get("NOMAD_MEMORY_MAX_LIMIT", "0") or 0),
            mounts=list(self.mounts),
        )

    async def _wait_and_decide(self) -> bool:
        """Wait for the task to exit; True if it should be started again."""
        assert self.handle is not None and self.driver is not None
        try:
            result: ExitResult = await self.driver.wait_task(self.handle)
        except Exception as exc:  # as Nomad's handleWait: a failed wait ends the run, never the runner
            log.error("task %s/%s: failed to wait on task, resources may have been leaked: %r",
                      self.ar.alloc.id, self.name, exc)
            result = ExitResult(exit_code=-1, err=f"failed to wait on task: {exc!r}")
        self.emit(
            lc.TASK_TERMINATED,
            exit_code=result.exit_code,
            signal=result.signal,
            message=result.err,
            details={"oom_killed": "true" if result.oom_killed else "false"},
        )
        if self._kill_event.is_set():
            self._finish_killed()
            return False
        if self._restart_requested:
            reason, self._restart_requested = self._restart_requested, ""
            self._set_handle(None)
            self.emit(lc.TASK_RESTARTING, TASK_STATE_PENDING, restart_reason=reason)
            return True
        decision = self.restarts.on_exit(time.time_ns(), result.successful)
        return await self._apply_decision(decision)

    async def _apply_decision(self, decision: lc.RestartDecision) -> bool:
        if decision.state == lc.TASK_RESTARTING:
            if self.handle is not None:
                self._set_handle(None)  # exited: a restarted agent must not wait on it again
            self.emit(lc.TASK_RESTARTING, TASK_STATE_PENDING, start_delay=decision.delay, restart_reason=decision.reason)
            try:
                await asyncio.wait_for(self._kill_event.wait(), decision.delay / 1e9)
            except TimeoutError:
                return True
            self._finish_killed()
            return False
        if decision.state == lc.TASK_NOT_RESTARTING:
            self.emit(lc.TASK_NOT_RESTARTING, TASK_STATE_DEAD, restart_reason=decision.reason, fails_task=True)
        else:
            self.emit_dead()
        return False

    def emit_dead(self) -> None:
        self.state = lc.mark_dead(self.state, time.time_ns())
        if self._on_state:
            self._on_state(self.name, self.state)

    def _finish_killed(self) -> None:
        if self.state.state != TASK_STATE_DEAD:
            self.emit(lc.TASK_KILLED, TASK_STATE_DEAD)

    # --- control from the alloc runner / API ------------------------------------

    def request_stop(self) -> None:
        """Mark the task as being stopped without acting yet (see `kill`)."""
        self._kill_event.set()

    async def kill(self, event_type: str = lc.TASK_KILLING, **fields) -> None:
        """Stop the task for good (desired stop, sibling failure, leader death)."""
        if self._killing or self.done.is_set() and self.state.state == TASK_STATE_DEAD:
            await self.done.wait()
            return
        self._killing = True
        self._kill_event.set()
        await self._shutdown_delay()
        if self.state.state != TASK_STATE_DEAD and self.released.is_set():
            if event_type == lc.TASK_KILLING:
                fields.setdefault("kill_timeout", self.kill_timeout)
            self.emit(event_type, **fields)
        if self.handle is not None and self.driver is not None and self.state.state == TASK_STATE_RUNNING:
            try:
                await self.driver.stop_task(self.handle, self.kill_timeout, self.task.kill_signal or "SIGINT")
            except DriverError as exc:
                log.warning("task %s: stop failed (%s); killing it", self.name, exc)
                await self.driver.stop_task(self.handle, 0, "SIGKILL")
        await self.done.wait()

    async def _shutdown_delay(self) -> None:
        """Nomad's task `shutdown_delay`: wait before the kill signal (skipped on request)."""
        delay = self.task.shutdown_delay
        if not delay or self.state.state != TASK_STATE_RUNNING:
            return
        text = format_duration(delay)
        if self.ar.alloc.desired_transition.no_shutdown_delay:
            self.emit(lc.TASK_SKIPPING_SHUTDOWN_DELAY, message=f"Skipping shutdown_delay of {text} before killing the task.")
            return
        self.emit(lc.TASK_WAITING_SHUTDOWN_DELAY, message=f"Waiting for shutdown_delay of {text} before killing the task.")
        try:
            await asyncio.wait_for(self.done.wait(), delay / 1e9)
        except TimeoutError:
            pass

    async def restart(self, reason: str = "User requested restart") -> None:
        if self.state.state != TASK_STATE_RUNNING or self.handle is None or self.driver is None:
            raise DriverError(f'Task "{self.name}" is not running')
        self._restart_requested = reason
        self.emit(lc.TASK_RESTART_SIGNAL, restart_reason=reason)
        await self.driver.stop_task(self.handle, self.kill_timeout, self.task.kill_signal or "SIGINT")

    async def signal(self, sig: str, reason: str = "User requested signal", display: str = "") -> None:
        if self.state.state != TASK_STATE_RUNNING or self.handle is None or self.driver is None:
            raise DriverError(f'Task "{self.name}" is not running')
        self.emit(lc.TASK_SIGNALING, display=display, task_signal=sig, task_signal_reason=reason)
        await self.driver.signal_task(self.handle, sig)

