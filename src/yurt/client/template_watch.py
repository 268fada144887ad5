"""Re-rendering task templates while the task runs, and their `change_mode` actions.

A watcher polls the inputs of every template (its `source`, files read through `file`, env
values) every POLL_INTERVAL seconds; a changed template waits out its `wait {min max}`
quiescence, is rendered again, and when its destination changed the task runner applies the
change modes after a random splay (Nomad's TaskTemplateManager): `restart` wins over everything,
else every distinct `change_signal` is sent and every `change_script` runs; `noop` only writes.
"""

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from yurt.drivers.base import DriverError
from yurt.gotemplate import go_print

from .templates import CHANGE_NOOP, CHANGE_RESTART, CHANGE_SCRIPT, CHANGE_SIGNAL, TaskTemplates, TemplateError

if TYPE_CHECKING:
    from .taskrunner import TaskRunner

log = logging.getLogger(__name__)
POLL_INTERVAL = 1.0
TASK_HOOK_MESSAGE = "Task hook message"
TASK_HOOK_FAILED = "Task hook failed"
RESTART_MESSAGE = "Template with change_mode restart re-rendered"
SIGNAL_MESSAGE = "Template re-rendered"


@dataclass(frozen=True)
class ChangeActions:
    restart: bool = False
    signals: tuple[str, ...] = ()
    scripts: tuple[dict[str, Any], ...] = ()
    splay_ns: int = 0

    @property
    def empty(self) -> bool:
        return not (self.restart or self.signals or self.scripts)


def plan_change(specs: list[dict[str, Any]]) -> ChangeActions:
    """What to do after these templates re-rendered (Nomad's onTemplateRendered)."""
    restart, signals, scripts, splay = False, set(), [], 0
    for spec in specs:
        mode = spec.get("ChangeMode") or CHANGE_RESTART
        if mode == CHANGE_NOOP:
            continue
        if mode == CHANGE_RESTART:
            restart = True
        elif mode == CHANGE_SIGNAL and spec.get("ChangeSignal"):
            signals.add(spec["ChangeSignal"])
        elif mode == CHANGE_SCRIPT and spec.get("ChangeScript"):
            scripts.append(spec["ChangeScript"])
        splay = max(splay, int(spec.get("Splay") or 0))
    if restart:
        return ChangeActions(restart=True, splay_ns=splay)
    return ChangeActions(False, tuple(sorted(signals)), tuple(scripts), splay)


class Quiescence:
    """Per template `wait {min, max}`: render once inputs stayed still for min (or max passed)."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[float, float, tuple]] = {}  # index -> (first seen, last change, inputs)

    def ready(self, templates: TaskTemplates, changed: list[int], env: dict[str, str], now: float) -> list[int]:
        out = []
        for i in list(self.pending):
            if i not in changed:
                del self.pending[i]  # the inputs went back to what was rendered
        for i in changed:
            block = templates.blocks[i]
            wait = block.spec.get("Wait") or {}
            low, high = (wait.get("Min") or 0) / 1e9, (wait.get("Max") or 0) / 1e9
            if not low and not high:
                out.append(i)
                continue
            inputs = block.inputs(env)
            first, last, seen = self.pending.get(i, (now, now, inputs))
            if seen != inputs:
                last = now
            if now - last >= low or (high and now - first >= high):
                self.pending.pop(i, None)
                out.append(i)
            else:
                self.pending[i] = (first, last, inputs)
        return out


class TemplateWatcher:
    def __init__(self, runner: "TaskRunner", templates: TaskTemplates, env: dict[str, str],
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.runner = runner
        self.templates = templates
        self.env = env
        self.rng = rng or random.Random()
        self.clock = clock
        self.sleep = sleep
        self.quiet = Quiescence()

    async def run(self) -> None:
        while True:
            await self.sleep(POLL_INTERVAL)
            try:
                changed = await self.check_once()
            except TemplateError as exc:
                await self.runner.kill(kill_reason=f"Template failed: {exc}", fails_task=True)
                return
            if changed:
                await self.apply(plan_change([self.templates.blocks[i].spec for i in changed]))

    async def check_once(self) -> list[int]:
        """Re-render the templates whose inputs changed (and settled); the ones whose file changed."""
        changed = self.templates.changed_inputs(self.env)
        ready = self.quiet.ready(self.templates, changed, self.env, self.clock())
        return self.templates.rerender(ready, self.env) if ready else []

    async def apply(self, actions: ChangeActions) -> None:
        if actions.empty:
            return
        if actions.splay_ns:
            await self.sleep(self.rng.uniform(0, actions.splay_ns / 1e9))
        runner = self.runner
        if actions.restart:
            try:
                await asyncio.shield(runner.restart(reason=RESTART_MESSAGE))  # outlives the watcher's cancel
            except DriverError as exc:
                log.info("task %s: template restart skipped (%s)", runner.name, exc)
            return
        failed = []
        for sig in actions.signals:
            try:
                await asyncio.shield(runner.signal(sig, reason=SIGNAL_MESSAGE, display=SIGNAL_MESSAGE))
            except DriverError as exc:
                failed.append((sig, exc))
        if failed:
            names = " ".join(sig for sig, _ in failed)
            await runner.kill(kill_reason=f"Template failed to send signals [{names}]: {failed[0][1]}", fails_task=True)
            return
        await asyncio.gather(*(self.run_script(script) for script in actions.scripts))

    async def run_script(self, script: dict[str, Any]) -> None:
        command, args = script.get("Command") or "", list(script.get("Args") or [])
        timeout = (script.get("Timeout") or 5_000_000_000) / 1e9
        go_args = go_print(args, False)  # Go's %v of a []string: [a b]
        shown = f"{command} with arguments {go_args}"
        try:
            code = await exec_in_task(self.runner, [command, *args], timeout)
        except (DriverError, OSError, asyncio.TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            await self.script_failed(script, f"Template failed to run script {shown} on change: {reason}. Exit code: -1")
            return
        if code != 0:
            await self.script_failed(script, f"Template ran script {shown} on change but it exited with code: {code}")
            return
        self.runner.emit(TASK_HOOK_MESSAGE, message=f"Template successfully ran script {command} with arguments: "
                                                    f"{go_args}. Exit code: 0")

    async def script_failed(self, script: dict[str, Any], message: str) -> None:
        self.runner.emit(TASK_HOOK_FAILED, message=message)
        if script.get("FailOnError"):
            await self.runner.kill(kill_reason="Template script failed, task is being killed", fails_task=True)


async def exec_in_task(runner: "TaskRunner", argv: list[str], timeout: float) -> int:
    """Run argv in the task's context: the driver's exec when it has one, else on the host."""
    driver, handle = runner.driver, runner.handle
    if driver is None or handle is None:
        raise DriverError(f'Task "{runner.name}" is not running')
    if hasattr(driver, "exec_task"):
        _out, _err, code = await asyncio.wait_for(driver.exec_task(handle, argv, timeout), timeout + 1)
        return code
    if hasattr(driver, "exec_argv"):
        argv = driver.exec_argv(handle, argv)
    task_dir = runner.ar.alloc_dir.task_dir(runner.name)
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=task_dir if os.path.isdir(task_dir) else None, env=runner.env or None,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise


def start_watch(runner: "TaskRunner", templates: TaskTemplates | None) -> asyncio.Task | None:
    if templates is None or not templates.blocks:
        return None
    watcher = TemplateWatcher(runner, templates, templates.render_env)
    return asyncio.create_task(watcher.run(), name=f"templates:{runner.name}")


def resume_watch(runner: "TaskRunner") -> asyncio.Task | None:
    """After a client restart re-attached a running task: render again and watch its templates."""
    if not runner.task.templates:
        return None
    try:
        cfg = runner._task_config()
        templates = TaskTemplates(runner.task.templates, cfg.task_dir)
        cfg.env.update(templates.render_all(cfg.env))
    except TemplateError as exc:
        log.warning("task %s: templates not watched after recovery: %s", runner.name, exc)
        return None
    return start_watch(runner, templates)


def stop_watch(task: asyncio.Task | None) -> None:
    if task is not None and task is not asyncio.current_task():
        task.cancel()
