"""`PUT /v1/client/allocation/:id/restart` with `AllTasks: true` (`alloc restart -all-tasks`):
every task of the allocation starts again, dead prestart and poststop tasks included, in lifecycle
order (Nomad's `AllocRunner.RestartAll`). Without `AllTasks` only running tasks restart.

While the tasks go down the alloc runner neither reports a client status (the alloc must not look
complete to the server), nor kills siblings, nor releases poststop tasks (`AllocRunner.restarting_all`).
"""

import asyncio
import time
from typing import TYPE_CHECKING

from yurt.structs.alloc import TASK_STATE_DEAD, TASK_STATE_PENDING, TaskState
from yurt.structs.base import evolve

from . import lifecycle as lc
from .taskrunner import TaskRunner

if TYPE_CHECKING:
    from .allocrunner import AllocRunner

USER_RESTART = "User requested restart"


def restarted_state(state: TaskState, now: int, reason: str) -> TaskState:
    """A task's state after it went down for a restart-all: its kill bookkeeping dropped
    (no "Killed" event, not finished, not failed) and a "Restarting" event."""
    events = list(state.events or ())
    if events and events[-1].type == lc.TASK_KILLED:
        events.pop()
    base = evolve(state, events=events, finished_at=None, failed=False)
    return lc.apply_event(base, lc.new_event(lc.TASK_RESTARTING, now, restart_reason=reason), TASK_STATE_PENDING)


async def restart_all_tasks(runner: "AllocRunner", reason: str = USER_RESTART) -> None:
    """Take every task down, then start them all again through the lifecycle coordinator."""
    runner.restarting_all = True
    try:
        live = [tr for tr in runner.task_runners.values() if tr.released.is_set() and not tr.done.is_set()]
        await asyncio.gather(*(tr.kill(lc.TASK_RESTART_SIGNAL, restart_reason=reason) for tr in live))
        now = time.time_ns()
        for name, old in list(runner.task_runners.items()):
            if not old.released.is_set():
                continue  # never ran (a poststop task waiting for the end): it keeps waiting
            state = restarted_state(old.state, now, reason)
            new = TaskRunner(runner, old.task, old.driver, state, None, on_state=old._on_state)
            runner.task_runners[name] = new
            runner.task_states[name] = state
            runner.ctx.state.put_task_state(runner.id, name, state)
            runner.ctx.state.put_task_handle(runner.id, name, None)
            runner._released.discard(name)
            runner._runs.append(asyncio.create_task(new.run(), name=f"task {runner.id[:8]}/{name}"))
    finally:
        runner.restarting_all = False
    runner._release_ready()
    runner._report()


def check_restartable(runner: "AllocRunner") -> str:
    """Why the allocation cannot restart (Nomad's errors), or ""."""
    if runner.alloc.server_terminal or runner._stopping or runner.restarting_all:
        return "Task not running"
    if all(s.state == TASK_STATE_DEAD for s in runner.task_states.values()):
        return "Task not running"
    return ""
