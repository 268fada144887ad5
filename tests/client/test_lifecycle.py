"""Pure lifecycle decisions: no event loop, time passed in."""

import random

from yurt.client import lifecycle as lc
from yurt.structs import MINUTE, SECOND
from yurt.structs.alloc import Allocation, TaskState
from yurt.structs.job import RestartPolicy, Task, TaskLifecycle

T0 = 1_700_000_000 * SECOND


def tracker(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail", job_type="service"):
    policy = RestartPolicy(attempts=attempts, interval=interval, delay=delay, mode=mode)
    return lc.RestartTracker(policy, job_type, random.Random(1))


def test_restarts_within_policy_with_jittered_delay():
    t = tracker()
    d = t.on_exit(T0, successful=False)
    assert d.state == lc.TASK_RESTARTING and d.reason == lc.REASON_WITHIN_POLICY
    assert 15 * SECOND <= d.delay <= 15 * SECOND * 1.25


def test_fail_mode_gives_up_after_attempts():
    t = tracker(attempts=2)
    assert t.on_exit(T0, False).state == lc.TASK_RESTARTING
    assert t.on_exit(T0 + SECOND, False).state == lc.TASK_RESTARTING
    d = t.on_exit(T0 + 2 * SECOND, False)
    assert d.state == lc.TASK_NOT_RESTARTING
    assert d.reason == 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"'


def test_new_interval_resets_the_count():
    t = tracker(attempts=1, interval=MINUTE)
    assert t.on_exit(T0, False).state == lc.TASK_RESTARTING
    assert t.on_exit(T0 + 2 * MINUTE, False).state == lc.TASK_RESTARTING


def test_delay_mode_waits_until_the_interval_ends():
    t = tracker(attempts=1, interval=MINUTE, mode="delay")
    t.on_exit(T0, False)
    d = t.on_exit(T0 + 10 * SECOND, False)
    assert d.state == lc.TASK_RESTARTING and d.delay == 50 * SECOND and d.reason == lc.REASON_DELAY


def test_batch_success_terminates_but_service_success_restarts():
    assert tracker(job_type="batch").on_exit(T0, True).state == lc.TASK_TERMINATED
    assert tracker(job_type="service").on_exit(T0, True).state == lc.TASK_RESTARTING


def test_zero_attempts_and_unrecoverable_start_errors():
    assert tracker(attempts=0).on_exit(T0, False).reason == lc.REASON_NO_RESTARTS
    assert tracker().on_start_error(T0, recoverable=False).state == lc.TASK_NOT_RESTARTING
    assert tracker().on_start_error(T0, recoverable=True).state == lc.TASK_RESTARTING


def test_display_messages():
    assert lc.new_event(lc.TASK_TERMINATED, T0, exit_code=3).display_message == "Exit Code: 3"
    assert lc.new_event(lc.TASK_TERMINATED, T0, exit_code=130, signal=2).display_message == "Exit Code: 130, Signal: 2"
    ev = lc.new_event(lc.TASK_RESTARTING, T0, start_delay=15 * SECOND, restart_reason=lc.REASON_WITHIN_POLICY)
    assert ev.display_message == "Task restarting in 15s"
    ev = lc.new_event(lc.TASK_KILLING, T0, kill_timeout=5 * SECOND)
    assert ev.display_message == "Sent interrupt. Waiting 5s before force killing"
    assert lc.new_event(lc.TASK_KILLED, T0).display_message == "Task successfully killed"
    ev = lc.new_event(lc.TASK_SIBLING_FAILED, T0, failed_sibling="web")
    assert ev.display_message == 'Task\'s sibling "web" failed'


def test_apply_event_tracks_times_restarts_and_failure():
    s = TaskState()
    s = lc.apply_event(s, lc.new_event(lc.TASK_STARTED, T0), "running")
    assert s.state == "running" and s.started_at == "2023-11-14T22:13:20.000000000Z"
    s = lc.apply_event(s, lc.new_event(lc.TASK_RESTARTING, T0 + SECOND), "pending")
    assert s.restarts == 1 and s.last_restart
    s = lc.apply_event(s, lc.new_event(lc.TASK_NOT_RESTARTING, T0 + 2 * SECOND, fails_task=True), "dead")
    assert s.failed and s.finished_at and len(s.events) == 3


def test_events_are_capped_at_ten():
    s = TaskState()
    for i in range(15):
        s = lc.apply_event(s, lc.new_event(lc.TASK_SETUP, T0 + i))
    assert len(s.events) == 10 and s.events[-1].time == T0 + 14


def test_client_status_precedence():
    pending, running = TaskState(state="pending"), TaskState(state="running")
    dead, failed = TaskState(state="dead"), TaskState(state="dead", failed=True)
    assert lc.client_status({"a": failed, "b": running})[0] == "failed"
    assert lc.client_status({"a": pending, "b": running})[0] == "running"
    assert lc.client_status({"a": pending, "b": dead}) == ("pending", "No tasks have started")
    assert lc.client_status({"a": dead, "b": running}) == ("running", "Tasks are running")
    assert lc.client_status({"a": dead, "b": dead}) == ("complete", "All tasks have completed")


def test_siblings_to_kill():
    tasks = [Task(name="a", leader=True), Task(name="b"), Task(name="side", lifecycle=TaskLifecycle(hook="poststart", sidecar=True))]
    running = TaskState(state="running")
    kill = lc.siblings_to_kill(tasks, {"a": TaskState(state="dead"), "b": running, "side": running}, "a")
    assert kill.event_type == lc.TASK_LEADER_DEAD and kill.tasks == ["b", "side"]
    kill = lc.siblings_to_kill(tasks, {"a": running, "b": TaskState(state="dead", failed=True), "side": running}, "b")
    assert kill.event_type == lc.TASK_SIBLING_FAILED and kill.failed_sibling == "b"
    assert lc.siblings_to_kill(tasks, {"a": running, "b": TaskState(state="dead"), "side": running}, "b") is None
    only_side = [Task(name="main"), tasks[2]]
    kill = lc.siblings_to_kill(only_side, {"main": TaskState(state="dead"), "side": running}, "main")
    assert kill.event_type == lc.TASK_MAIN_DEAD


def test_diff_allocs():
    new = Allocation(id="new")
    new_but_stopped = Allocation(id="ns", desired_status="stop")
    known_stop = Allocation(id="k1", desired_status="stop", alloc_modify_index=5)
    known_update = Allocation(id="k2", alloc_modify_index=9)
    known_same = Allocation(id="k3", alloc_modify_index=3)
    diff = lc.diff_allocs({"k1": 4, "k2": 4, "k3": 3, "gone": 1}, [new, new_but_stopped, known_stop, known_update, known_same])
    assert [a.id for a in diff.added] == ["new"]
    assert [a.id for a in diff.ignored] == ["ns"]
    assert [a.id for a in diff.stopped] == ["k1"]
    assert [a.id for a in diff.updated] == ["k2"]
    assert diff.removed == ["gone"]


def test_deployment_health():
    tasks = [Task(name="web"), Task(name="init", lifecycle=TaskLifecycle(hook="prestart"))]
    running, done = TaskState(state="running"), TaskState(state="dead")
    deadline = T0 + 60 * SECOND
    states = {"web": running, "init": done}
    assert lc.deployment_health(tasks, states, None, T0, 10 * SECOND, deadline) == (None, T0)
    assert lc.deployment_health(tasks, states, T0, T0 + 10 * SECOND, 10 * SECOND, deadline) == (lc.HEALTHY, T0)
    pending = {"web": TaskState(state="pending"), "init": done}
    assert lc.deployment_health(tasks, pending, T0, T0 + 5 * SECOND, 10 * SECOND, deadline) == (None, None)
    assert lc.deployment_health(tasks, pending, None, deadline, 10 * SECOND, deadline)[0] == lc.UNHEALTHY
    failed = {"web": TaskState(state="dead", failed=True), "init": done}
    assert lc.deployment_health(tasks, failed, T0, T0, 10 * SECOND, deadline)[0] == lc.UNHEALTHY


def test_tasks_to_release_follows_lifecycle_hooks():
    init = Task(name="init", lifecycle=TaskLifecycle(hook="prestart"))
    side = Task(name="side", lifecycle=TaskLifecycle(hook="prestart", sidecar=True))
    main = Task(name="main")
    post = Task(name="post", lifecycle=TaskLifecycle(hook="poststart"))
    stop = Task(name="stop", lifecycle=TaskLifecycle(hook="poststop"))
    tasks = [init, side, main, post, stop]
    pending, running = TaskState(), TaskState(state="running", started_at="t")
    done, failed = TaskState(state="dead", started_at="t"), TaskState(state="dead", failed=True, started_at="t")
    states = {n: pending for n in ("init", "side", "main", "post", "stop")}
    assert lc.tasks_to_release(tasks, states, set(), False) == ["init", "side"]
    states.update(init=done, side=running)
    assert lc.tasks_to_release(tasks, states, {"init", "side"}, False) == ["main"]
    states["main"] = running
    assert lc.tasks_to_release(tasks, states, {"init", "side", "main"}, False) == ["post"]
    states.update(main=done, post=done, side=done)
    assert lc.tasks_to_release(tasks, states, {"init", "side", "main", "post"}, False) == ["stop"]
    # a failed prestart task keeps the main task from starting
    states = {n: pending for n in ("init", "side", "main", "post", "stop")}
    states.update(init=failed, side=running)
    assert lc.tasks_to_release(tasks, states, {"init", "side"}, False) == []
    # stopping: nothing new starts except poststop once the rest is dead
    assert lc.tasks_to_release(tasks, {n: pending for n in states}, set(), True) == []


def test_poststop_tasks_are_not_killed_as_siblings():
    main, stop = Task(name="main"), Task(name="stop", lifecycle=TaskLifecycle(hook="poststop"))
    states = {"main": TaskState(state="dead", failed=True), "stop": TaskState()}
    assert lc.siblings_to_kill([main, stop], states, "main") is None


def test_event_details_as_nomad_fills_them():
    ev = lc.new_event(lc.TASK_TERMINATED, T0, exit_code=0)
    assert ev.details == {"exit_code": "0", "signal": "0", "oom_killed": "false"}
    ev = lc.new_event(lc.TASK_KILLING, T0, kill_timeout=5 * SECOND)
    assert ev.details == {"kill_timeout": "5s"}
    assert lc.new_event(lc.TASK_STARTED, T0).details is None


def test_terminated_event_carries_the_oom_kill():
    from yurt.client import lifecycle as lc

    ev = lc.new_event(lc.TASK_TERMINATED, 1, exit_code=137, message="OOM Killed", details={"oom_killed": "true"})
    assert ev.details["oom_killed"] == "true" and ev.details["exit_code"] == "137"
    assert ev.display_message == 'Exit Code: 137, Exit Message: "OOM Killed"'
    plain = lc.new_event(lc.TASK_TERMINATED, 1, exit_code=0)
    assert plain.details["oom_killed"] == "false"


def test_an_ephemeral_hook_task_that_succeeds_is_not_restarted_in_a_service_job():
    t = tracker(attempts=0)
    t.ephemeral_hook = True  # prestart / poststart, not a sidecar: done once it succeeds (Nomad)
    assert t.on_exit(T0, successful=True).state == lc.TASK_TERMINATED
    assert t.on_exit(T0, successful=False).state == lc.TASK_NOT_RESTARTING
    assert tracker(attempts=0).on_exit(T0, successful=True).state == lc.TASK_NOT_RESTARTING
