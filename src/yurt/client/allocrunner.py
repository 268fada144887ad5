"""Runs one allocation: its alloc dir, a TaskRunner per task, the alloc's client status,
sibling kills, and stop / destroy / detach."""

import asyncio
import logging
import time
from typing import Any, Protocol

from yurt.drivers.base import Driver, TaskHandle
from yurt.structs.alloc import TASK_STATE_DEAD, Allocation, TaskState
from yurt.structs.codec import to_wire
from yurt.structs.base import MINUTE, SECOND
from yurt.structs.job import Task, UpdateStrategy
from yurt.structs.node import Node

from . import lifecycle as lc
from .allocdir import AllocDir, alloc_dir_for
from .config import ClientConfig
from .localstate import LocalState
from .max_run_duration import MAX_RUN_DURATION_REASON, enforce_max_run_duration, max_run_deadline
from .taskrunner import TaskRunner

log = logging.getLogger(__name__)
DEFAULT_MIN_HEALTHY_TIME = 10 * SECOND
DEFAULT_HEALTHY_DEADLINE = 5 * MINUTE
HEALTH_POLL_INTERVAL = 0.1


class RunnerContext(Protocol):
    """What runners need from the agent."""

    config: ClientConfig
    node: Node
    state: LocalState
    drivers: dict[str, Driver]

    def queue_update(self, update: dict[str, Any], urgent: bool = False) -> None: ...


class AllocRunner:
    def __init__(self, ctx: RunnerContext, alloc: Allocation, restored: bool = False):
        self.ctx = ctx
        self.alloc = alloc
        self.alloc_dir: AllocDir = alloc_dir_for(ctx.config.alloc_dir, alloc.id)
        self.task_states: dict[str, TaskState] = {}
        self.task_runners: dict[str, TaskRunner] = {}
        self._restored = restored
        self._runs: list[asyncio.Task] = []
        self._kill_tasks: set[asyncio.Task] = set()
        self.client_status, self.client_description = "pending", ""
        self.deployment_status: dict[str, Any] | None = None
        self._health_watch: asyncio.Task | None = None
        self.destroyed = False
        self._released: set[str] = set()
        self._stopping = False
        self.max_run_exceeded = False
        self.restarting_all = False  # alloc_restart.restart_all_tasks is taking every task down

    @property
    def id(self) -> str:
        return self.alloc.id

    def tasks(self) -> list[Task]:
        group = self.alloc.job.lookup_task_group(self.alloc.task_group) if self.alloc.job else None
        return list(group.tasks or ()) if group else []

    def start(self) -> None:
        """Build the alloc dir and start every task runner (restoring stored ones)."""
        tasks = self.tasks()
        stored = self.ctx.state.tasks(self.id) if self._restored else {}
        if not self._restored:
            self.ctx.state.put_alloc(self.alloc)
        self.alloc_dir.build([t.name for t in tasks])
        for task in tasks:
            handle_data, state = stored.get(task.name, (None, None))
            handle = TaskHandle.from_dict(handle_data) if handle_data else None
            runner = TaskRunner(
                self, task, self.ctx.drivers.get(task.driver), state, handle, on_state=self._on_task_state
            )
            self.task_runners[task.name] = runner
            self.task_states[task.name] = runner.state
            if handle is not None or runner.state.started_at is not None or runner.state.state == TASK_STATE_DEAD:
                self._release(task.name)
        self._release_ready()
        self._report()  # restored allocs re-send their state: the last update may have been lost
        if self.alloc.server_terminal:
            self._stopping = True
            for runner in self.task_runners.values():
                runner.request_stop()  # an exit seen on restore is a kill, not a reason to restart
        for runner in self.task_runners.values():
            self._runs.append(asyncio.create_task(runner.run(), name=f"task {self.id[:8]}/{runner.name}"))
        self._watch_health()
        if max_run_deadline(self.alloc) is not None:
            self._runs.append(asyncio.create_task(enforce_max_run_duration(self), name=f"max_run {self.id[:8]}"))

    def _on_task_state(self, name: str, state: TaskState) -> None:
        previous = self.task_states.get(name)
        self.task_states[name] = state
        self.ctx.state.put_task_state(self.id, name, state)
        self._report()
        if state.state == TASK_STATE_DEAD and (previous is None or previous.state != TASK_STATE_DEAD) and not self.restarting_all:
            self._kill_siblings(name)
        self._release_ready()

    def _release(self, name: str) -> None:
        self._released.add(name)
        self.task_runners[name].released.set()

    def _release_ready(self) -> None:
        if not self.task_runners or self.restarting_all:
            return
        for name in lc.tasks_to_release(self.tasks(), self.task_states, self._released, self._stopping):
            self._release(name)

    def _report(self) -> None:
        if self.restarting_all:
            return
        status, description = lc.client_status(self.task_states)
        changed = bool(status) and status != self.client_status
        if status:
            self.client_status, self.client_description = status, description
        if self.max_run_exceeded:
            self.client_status, self.client_description = "complete", MAX_RUN_DURATION_REASON
        self.ctx.queue_update(
            {
                "ID": self.id,
                "ClientStatus": self.client_status,
                "ClientDescription": self.client_description,
                "TaskStates": {name: to_wire(s) for name, s in self.task_states.items()},
                "DeploymentStatus": self.deployment_status,
                "NetworkStatus": None,
            },
            urgent=changed and not self._stopped_as_asked(),
        )

    def _stopped_as_asked(self) -> bool:
        """A new client status goes to the server at once (`urgent`: running, failed, ...)
        except `complete` after the server asked for the stop: no one waits on that one
        (the server counts the alloc as stopping already), so it takes the normal batching
        (Nomad's 200 ms) and leaves the urgent batches to updates that matter, such as the
        `running` of the alloc that replaces it."""
        return self.client_status == "complete" and self.alloc.server_terminal

    def _kill_siblings(self, dead: str) -> None:
        kill = lc.siblings_to_kill(self.tasks(), self.task_states, dead)
        if kill is None:
            return
        fields: dict[str, Any] = {}
        if kill.event_type == lc.TASK_SIBLING_FAILED:
            fields["failed_sibling"] = kill.failed_sibling
        for name in kill.tasks:
            task = asyncio.create_task(self.task_runners[name].kill(kill.event_type, **fields))
            self._kill_tasks.add(task)
            task.add_done_callback(self._kill_tasks.discard)

    def update(self, alloc: Allocation) -> None:
        new_deployment = alloc.deployment_id != self.alloc.deployment_id
        self.alloc = alloc
        self.ctx.state.put_alloc(alloc)
        if alloc.client_status == "unknown" and not alloc.server_terminal:
            self._report()  # the server marked it unknown while we were cut off: tell it again
        if new_deployment and not alloc.server_terminal:
            self.deployment_status = None
            self._watch_health()

    # --- deployment health ---------------------------------------------------------

    def _update_strategy(self) -> UpdateStrategy | None:
        job = self.alloc.job
        group = job.lookup_task_group(self.alloc.task_group) if job else None
        return (group.update if group else None) or (job.update if job else None)

    def _watch_health(self) -> None:
        strategy = self._update_strategy()
        if not self.alloc.deployment_id or strategy is None or strategy.health_check == "manual":
            return
        if self._health_watch is not None:
            self._health_watch.cancel()
        self._health_watch = asyncio.create_task(self._track_health(strategy), name=f"health {self.id[:8]}")
        self._runs.append(self._health_watch)

    async def _track_health(self, strategy: UpdateStrategy) -> None:
        min_healthy = strategy.min_healthy_time or DEFAULT_MIN_HEALTHY_TIME
        deadline = time.time_ns() + (strategy.healthy_deadline or DEFAULT_HEALTHY_DEADLINE)
        since: int | None = None
        while True:
            now = time.time_ns()
            verdict, since = lc.deployment_health(self.tasks(), self.task_states, since, now, min_healthy, deadline)
            if verdict is not None:
                self.deployment_status = {
                    "Healthy": verdict == lc.HEALTHY,
                    "Timestamp": lc.rfc3339(now),
                    "Canary": bool(self.alloc.deployment_status and self.alloc.deployment_status.canary),
                    "ModifyIndex": 0,
                }
                self._report()
                return
            await asyncio.sleep(HEALTH_POLL_INTERVAL)

    async def stop(self) -> None:
        """Kill every task (the server wants the alloc stopped); poststop tasks then run."""
        self._stopping = True
        tasks = {t.name: t for t in self.tasks()}
        doomed = [r for name, r in self.task_runners.items() if lc.task_hook(tasks[name]) != lc.HOOK_POSTSTOP]
        await asyncio.gather(*(r.kill() for r in doomed), return_exceptions=True)
        self._release_ready()
        for runner in self.task_runners.values():
            if runner.name in self._released:
                await runner.done.wait()
            else:
                await runner.kill()

    async def destroy(self) -> None:
        """Stop, then remove the alloc dir and local state (the server forgot the alloc, or client GC)."""
        if self.destroyed:
            return
        await self.stop()
        for runner in self.task_runners.values():
            if runner.handle is not None and runner.driver is not None:
                try:
                    await runner.driver.destroy_task(runner.handle, force=True)
                except Exception as exc:  # noqa: BLE001
                    log.warning("destroy task %s: %s", runner.name, exc)
        self.destroyed = True
        self.ctx.state.delete_alloc(self.id)
        # off the event loop: removing a dir tree took 5-10 ms, and GC destroys an old alloc
        # just when a new one arrives (`make_room`), on the new one's path to `running`
        await asyncio.to_thread(self.alloc_dir.destroy)

    async def kill_detached(self) -> None:
        """Kill the tasks through their drivers without the (cancelled) run loops."""
        for runner in self.task_runners.values():
            handle, driver = runner.handle, runner.driver
            if handle is None or driver is None:
                continue
            try:
                if driver.inspect_task(handle).state == "running":
                    await driver.stop_task(handle, runner.kill_timeout, runner.task.kill_signal or "SIGINT")
                await driver.destroy_task(handle, force=True)
            except Exception as exc:  # noqa: BLE001
                log.warning("kill task %s/%s: %s", self.id[:8], runner.name, exc)
        self.destroyed = True

    async def detach(self) -> None:
        """Leave the tasks running (agent shutdown): stop watching them."""
        for run in [*self._runs, *self._kill_tasks]:
            run.cancel()
        await asyncio.gather(*self._runs, *self._kill_tasks, return_exceptions=True)

    @property
    def terminal(self) -> bool:
        return all(s.state == TASK_STATE_DEAD for s in self.task_states.values())

    async def wait(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in self.task_runners.values())), timeout)

    def now(self) -> int:
        return time.time_ns()
