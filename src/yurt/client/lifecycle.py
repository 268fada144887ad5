"""Pure alloc and task lifecycle decisions: no IO, no clock (time is passed in).

- task events with Nomad's types and display messages,
- the restart tracker (attempts within interval, jittered delay, mode fail/delay),
- task state transitions, the alloc client status computed from task states,
- which sibling tasks to kill when a task dies (failure, leader, main tasks done),
- the diff between the allocs the server wants and the alloc runners we have.
"""

import datetime
import random
from dataclasses import dataclass, field

from yurt.structs.alloc import (
    ALLOC_CLIENT_COMPLETE,
    ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_PENDING,
    ALLOC_CLIENT_RUNNING,
    TASK_STATE_DEAD,
    TASK_STATE_PENDING,
    TASK_STATE_RUNNING,
    Allocation,
    TaskEvent,
    TaskState,
)
from yurt.structs.base import HOUR, MINUTE, SECOND, evolve
from yurt.structs.durations import format_duration
from yurt.structs.job import JOB_TYPE_BATCH, JOB_TYPE_SYSBATCH, RestartPolicy, Task

TASK_RECEIVED = "Received"
TASK_SETUP = "Task Setup"
TASK_STARTED = "Started"
TASK_TERMINATED = "Terminated"
TASK_RESTARTING = "Restarting"
TASK_NOT_RESTARTING = "Not Restarting"
TASK_KILLING = "Killing"
TASK_KILLED = "Killed"
TASK_DRIVER_FAILURE = "Driver Failure"
TASK_SETUP_FAILURE = "Setup Failure"
TASK_FAILED_VALIDATION = "Failed Validation"
TASK_SIBLING_FAILED = "Sibling Task Failed"
TASK_LEADER_DEAD = "Leader Task Dead"
TASK_MAIN_DEAD = "Main Tasks Dead"
TASK_SIGNALING = "Signaling"
TASK_RESTART_SIGNAL = "Restart Signaled"
TASK_DOWNLOADING_ARTIFACTS = "Downloading Artifacts"
TASK_ARTIFACT_DOWNLOAD_FAILED = "Failed Artifact Download"
TASK_WAITING_SHUTDOWN_DELAY = "Waiting for shutdown delay"
TASK_SKIPPING_SHUTDOWN_DELAY = "Skipping shutdown delay"

REASON_WITHIN_POLICY = "Restart within policy"
REASON_NO_RESTARTS = "Policy allows no restarts"
REASON_UNRECOVERABLE = "Error was unrecoverable"
REASON_DELAY = "Exceeded allowed attempts, applying a delay"
REASON_SUCCESS = "Restart unnecessary as task terminated successfully"
JITTER_COEFFICIENT = 0.25


def rfc3339(ns: int) -> str:
    dt = datetime.datetime.fromtimestamp(ns // 1_000_000_000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def display_message(ev: TaskEvent) -> str:
    """Nomad's `TaskEvent.PopulateEventDisplayMessage`."""
    t = ev.type
    if t == TASK_STARTED:
        return "Task started by client"
    if t == TASK_RECEIVED:
        return "Task received by client"
    if t == TASK_TERMINATED:
        parts = [f"Exit Code: {ev.exit_code}"]
        if ev.signal:
            parts.append(f"Signal: {ev.signal}")
        if ev.message:
            parts.append(f'Exit Message: "{ev.message}"')
        return ", ".join(parts)
    if t == TASK_RESTARTING:
        text = f"Task restarting in {format_duration(ev.start_delay)}"
        if ev.restart_reason and ev.restart_reason != REASON_WITHIN_POLICY:
            return f"{ev.restart_reason} - {text}"
        return text
    if t == TASK_NOT_RESTARTING:
        return ev.restart_reason or "Task exceeded restart policy"
    if t == TASK_KILLING:
        if ev.kill_reason:
            return ev.kill_reason
        if ev.kill_timeout:
            return f"Sent interrupt. Waiting {format_duration(ev.kill_timeout)} before force killing"
        return "Sent interrupt"
    if t == TASK_KILLED:
        return ev.kill_error or "Task successfully killed"
    if t == TASK_DRIVER_FAILURE:
        return ev.driver_error or "Failed to start task"
    if t == TASK_SETUP_FAILURE:
        return ev.setup_error or "Task setup failed"
    if t == TASK_FAILED_VALIDATION:
        return ev.validation_error or "Validation of task failed"
    if t == TASK_SIBLING_FAILED:
        return f'Task\'s sibling "{ev.failed_sibling}" failed'
    if t == TASK_LEADER_DEAD:
        return "Leader Task in Group dead"
    if t == TASK_MAIN_DEAD:
        return "Main tasks in the group died"
    if t == TASK_SIGNALING:
        text = f"Task being sent signal {ev.task_signal}" if ev.task_signal else "Task being sent a signal"
        return f"{text}: {ev.task_signal_reason}" if ev.task_signal_reason else text
    if t == TASK_RESTART_SIGNAL:
        return ev.restart_reason or "Task signaled to restart"
    if t == TASK_DOWNLOADING_ARTIFACTS:
        return "Client is downloading artifacts"
    if t == TASK_ARTIFACT_DOWNLOAD_FAILED:
        return ev.download_error or "Failed to download artifacts"
    return ev.message


def event_details(ev: TaskEvent) -> dict[str, str]:
    """The `Details` map Nomad fills beside the typed fields."""
    details: dict[str, str] = {}
    if ev.type == TASK_TERMINATED:
        oom = (ev.details or {}).get("oom_killed", "false")  # set by the task runner from the exit
        details = {"exit_code": str(ev.exit_code), "signal": str(ev.signal), "oom_killed": oom}
        if ev.message:
            details["exit_message"] = ev.message
    pairs = (
        ("restart_reason", ev.restart_reason), ("setup_error", ev.setup_error), ("driver_error", ev.driver_error),
        ("validation_error", ev.validation_error), ("failed_sibling", ev.failed_sibling), ("kill_reason", ev.kill_reason),
        ("kill_error", ev.kill_error), ("task_signal", ev.task_signal), ("task_signal_reason", ev.task_signal_reason),
        ("download_error", ev.download_error),
    )
    details.update({k: v for k, v in pairs if v})
    if ev.kill_timeout:
        details["kill_timeout"] = format_duration(ev.kill_timeout)
    if ev.start_delay:
        details["start_delay"] = str(ev.start_delay)
    if ev.fails_task:
        details["fails_task"] = "true"
    return details


def new_event(event_type: str, now: int, **fields) -> TaskEvent:
    ev = TaskEvent(type=event_type, time=now, **fields)
    details = event_details(ev)
    return evolve(ev, display_message=display_message(ev), details=details or None)


def default_restart_policy(job_type: str) -> RestartPolicy:
    if job_type in (JOB_TYPE_BATCH, JOB_TYPE_SYSBATCH):
        return RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail")
    return RestartPolicy(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail")


@dataclass(frozen=True)
class RestartDecision:
    state: str  # TASK_RESTARTING | TASK_NOT_RESTARTING | TASK_TERMINATED
    delay: int = 0
    reason: str = ""


@dataclass
class RestartTracker:
    """Nomad's RestartTracker: attempts within an interval, then fail or delay."""

    policy: RestartPolicy
    job_type: str
    rng: random.Random = field(default_factory=random.Random)
    count: int = 0
    start_time: int = 0
    ephemeral_hook: bool = False  # a prestart/poststart task that is no sidecar: done once it succeeds

    @property
    def restarts_on_success(self) -> bool:
        return not self.ephemeral_hook and self.job_type not in (JOB_TYPE_BATCH, JOB_TYPE_SYSBATCH)

    def jitter(self) -> int:
        d = self.policy.delay or 1
        return d + int(self.rng.randrange(d) * JITTER_COEFFICIENT)

    def on_exit(self, now: int, successful: bool) -> RestartDecision:
        if successful and not self.restarts_on_success:
            return RestartDecision(TASK_TERMINATED, 0, REASON_SUCCESS)
        return self._next(now)

    def on_start_error(self, now: int, recoverable: bool) -> RestartDecision:
        if not recoverable:
            return RestartDecision(TASK_NOT_RESTARTING, 0, REASON_UNRECOVERABLE)
        return self._next(now)

    def _next(self, now: int) -> RestartDecision:
        p = self.policy
        if p.attempts == 0:
            return RestartDecision(TASK_NOT_RESTARTING, 0, REASON_NO_RESTARTS)
        end = self.start_time + p.interval
        if now > end or self.start_time == 0:
            self.count = 0
            self.start_time = now
            end = now + p.interval
        self.count += 1
        if self.count > p.attempts:
            if p.mode == "delay":
                return RestartDecision(TASK_RESTARTING, max(end - now, 0), REASON_DELAY)
            interval = format_duration(p.interval)
            reason = f'Exceeded allowed attempts {p.attempts} in interval {interval} and mode is "fail"'
            return RestartDecision(TASK_NOT_RESTARTING, 0, reason)
        return RestartDecision(TASK_RESTARTING, self.jitter(), REASON_WITHIN_POLICY)


def apply_event(state: TaskState, ev: TaskEvent, new_state: str | None = None, max_events: int = 10) -> TaskState:
    """Append `ev` (Nomad keeps the last 10) and move to `new_state` with Nomad's bookkeeping."""
    events = [*(state.events or ()), ev][-max_events:]
    changes: dict = {"events": events}
    if ev.fails_task:
        changes["failed"] = True
    if ev.type == TASK_RESTARTING:
        changes["restarts"] = state.restarts + 1
        changes["last_restart"] = rfc3339(ev.time)
    if new_state and new_state != state.state:
        changes["state"] = new_state
        if new_state == TASK_STATE_RUNNING and state.started_at is None:
            changes["started_at"] = rfc3339(ev.time)
        if new_state == TASK_STATE_DEAD:
            changes["finished_at"] = rfc3339(ev.time)
    return evolve(state, **changes)


def mark_dead(state: TaskState, now: int) -> TaskState:
    """Dead without a new event (a batch task that completed)."""
    if state.state == TASK_STATE_DEAD:
        return state
    return evolve(state, state=TASK_STATE_DEAD, finished_at=rfc3339(now))


def client_status(task_states: dict[str, TaskState]) -> tuple[str, str]:
    """Nomad's getClientStatus: failed > running > pending > complete (a running main
    task with a poststop task still pending is a running alloc)."""
    states = list(task_states.values())
    if any(s.state == TASK_STATE_DEAD and s.failed for s in states):
        return ALLOC_CLIENT_FAILED, "Failed tasks"
    if any(s.state == TASK_STATE_RUNNING for s in states):
        return ALLOC_CLIENT_RUNNING, "Tasks are running"
    if any(s.state == TASK_STATE_PENDING for s in states):
        return ALLOC_CLIENT_PENDING, "No tasks have started"
    if states:
        return ALLOC_CLIENT_COMPLETE, "All tasks have completed"
    return "", ""


@dataclass(frozen=True)
class SiblingKill:
    tasks: list[str]
    event_type: str
    failed_sibling: str = ""


HOOK_PRESTART = "prestart"
HOOK_POSTSTART = "poststart"
HOOK_POSTSTOP = "poststop"
HOOK_MAIN = "main"


def task_hook(task: Task) -> str:
    return task.lifecycle.hook if task.lifecycle and task.lifecycle.hook else HOOK_MAIN


def _is_sidecar(task: Task) -> bool:
    return bool(task.lifecycle and task.lifecycle.sidecar)


def siblings_to_kill(tasks: list[Task], states: dict[str, TaskState], dead: str) -> SiblingKill | None:
    """After task `dead` died: kill the live siblings if it failed, if it was the
    leader, or if it was the last main task (sidecars then stop). Poststop tasks are
    never killed here: they run once the others are dead."""
    alive = [
        t.name
        for t in tasks
        if t.name != dead and task_hook(t) != HOOK_POSTSTOP and states.get(t.name, TaskState()).state != TASK_STATE_DEAD
    ]
    if not alive:
        return None
    dead_state = states.get(dead, TaskState())
    if dead_state.failed:
        return SiblingKill(alive, TASK_SIBLING_FAILED, dead)
    leader = next((t for t in tasks if t.leader), None)
    if leader is not None and leader.name == dead:
        return SiblingKill(alive, TASK_LEADER_DEAD)
    mains_alive = [t for t in tasks if t.name in alive and task_hook(t) == HOOK_MAIN]
    if not mains_alive and any(task_hook(t) == HOOK_MAIN for t in tasks):
        return SiblingKill(alive, TASK_MAIN_DEAD)
    return None


def tasks_to_release(tasks: list[Task], states: dict[str, TaskState], released: set[str], stopping: bool) -> list[str]:
    """Which not-yet-released tasks may start now (Nomad's task hook coordinator):
    prestart at once; main tasks when ephemeral prestart tasks completed successfully
    and prestart sidecars run; poststart once every main task has started; poststop
    once every other task is dead (also when the alloc is stopping)."""

    def state(t: Task) -> TaskState:
        return states.get(t.name, TaskState())

    prestart = [t for t in tasks if task_hook(t) == HOOK_PRESTART]
    mains = [t for t in tasks if task_hook(t) == HOOK_MAIN]
    prestart_ready = all(
        (state(t).state == TASK_STATE_RUNNING) if _is_sidecar(t) else (state(t).state == TASK_STATE_DEAD and not state(t).failed)
        for t in prestart
    )
    mains_started = all(state(t).started_at is not None for t in mains)
    others_dead = all(state(t).state == TASK_STATE_DEAD for t in tasks if task_hook(t) != HOOK_POSTSTOP)
    out: list[str] = []
    for t in tasks:
        if t.name in released:
            continue
        hook = task_hook(t)
        if hook == HOOK_POSTSTOP:
            ready = others_dead
        elif stopping:
            ready = False
        elif hook == HOOK_PRESTART:
            ready = True
        elif hook == HOOK_MAIN:
            ready = prestart_ready
        else:
            ready = mains_started
        if ready:
            out.append(t.name)
    return out


HEALTHY = "healthy"
UNHEALTHY = "unhealthy"


def deployment_health(
    tasks: list[Task], states: dict[str, TaskState], running_since: int | None, now: int, min_healthy_time: int, deadline: int
) -> tuple[str | None, int | None]:
    """Nomad's task_states health check for allocs in a deployment.

    Returns (verdict, running_since): `healthy` once every task has been running
    (prestart tasks: completed) for `min_healthy_time`, `unhealthy` when a task failed
    or the healthy deadline passed, else None with the updated running-since time."""
    if any(s.failed for s in states.values()):
        return UNHEALTHY, None
    up = True
    for task in tasks:
        state = states.get(task.name, TaskState())
        prestart_done = (
            task.lifecycle is not None and task.lifecycle.hook == "prestart" and not task.lifecycle.sidecar
            and state.state == TASK_STATE_DEAD
        )
        if state.state != TASK_STATE_RUNNING and not prestart_done:
            up = False
    since = (running_since or now) if up else None
    if since is not None and now - since >= min_healthy_time:
        return HEALTHY, since
    if now >= deadline:
        return UNHEALTHY, since
    return None, since


@dataclass
class AllocDiff:
    added: list[Allocation] = field(default_factory=list)
    updated: list[Allocation] = field(default_factory=list)
    stopped: list[Allocation] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    ignored: list[Allocation] = field(default_factory=list)


def diff_allocs(running: dict[str, int], allocs: list[Allocation]) -> AllocDiff:
    """Compare the server's allocs for this node with our runners (id -> AllocModifyIndex)."""
    diff = AllocDiff()
    seen: set[str] = set()
    for alloc in allocs:
        seen.add(alloc.id)
        if alloc.id not in running:
            (diff.ignored if alloc.terminal else diff.added).append(alloc)
        elif alloc.server_terminal:
            diff.stopped.append(alloc)
        elif alloc.alloc_modify_index > running[alloc.id]:
            diff.updated.append(alloc)
    diff.removed = [alloc_id for alloc_id in running if alloc_id not in seen]
    return diff
