"""`PUT /v1/client/allocation/:id/restart` with and without `AllTasks` (Nomad's RestartAll)."""

import asyncio
import os

from fakeserver import make_alloc, raw_task
from test_http_routes import http  # noqa: F401 - the fixture

from yurt.client.alloc_restart import restarted_state
from yurt.client import lifecycle as lc
from yurt.structs.alloc import TaskState
from yurt.structs.job import TaskLifecycle


async def _until(cond, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def _lines(path):
    return open(path).read().split() if os.path.exists(path) else []


def _tasks(shared):
    return [
        raw_task("init", f"echo init >> {shared}", lifecycle=TaskLifecycle(hook="prestart")),
        raw_task("main", f"echo main >> {shared}; exec sleep 60"),
        raw_task("cleanup", f"echo cleanup >> {shared}", lifecycle=TaskLifecycle(hook="poststop")),
    ]


async def test_all_tasks_restart_reruns_dead_prestart_tasks(server, agent, http, tmp_path):
    shared = tmp_path / "runs.txt"
    a = await agent()
    alloc = make_alloc(a.node.id, _tasks(shared), job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    await _until(lambda: _lines(shared) == ["init", "main"])
    runner = a.alloc_runners[alloc.id]
    first_pid = runner.task_runners["main"].handle.pid
    client = await http(a)

    resp = await client.put(f"/v1/client/allocation/{alloc.id}/restart", json={})  # running tasks only
    assert resp.status == 200
    await _until(lambda: _lines(shared) == ["init", "main", "main"])
    assert runner.task_runners["init"].state.restarts == 0

    resp = await client.put(f"/v1/client/allocation/{alloc.id}/restart", json={"AllTasks": True})
    assert resp.status == 200, await resp.text()
    await _until(lambda: _lines(shared) == ["init", "main", "main", "init", "main"])
    main = runner.task_runners["main"]
    await _until(lambda: main.state.state == "running" and main.handle is not None)
    assert main.handle.pid != first_pid
    init = runner.task_runners["init"].state
    assert [e.type for e in init.events][4:7] == ["Restarting", "Task Setup", "Started"]
    assert init.restarts == 1 and not init.failed
    assert "Killed" not in [e.type for e in main.state.events][-4:]
    assert runner.task_runners["cleanup"].state.state == "pending"  # poststop still waits for the end
    assert runner.client_status == "running"

    resp = await client.put(f"/v1/client/allocation/{alloc.id}/restart", json={"AllTasks": True, "TaskName": "main"})
    assert resp.status == 400
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete", timeout=15)  # poststop exits 0: not a failure (Nomad)
    assert _lines(shared)[-1] == "cleanup"


def test_restarted_state_drops_the_kill_bookkeeping():
    state = TaskState()
    for ev_type, new in ((lc.TASK_STARTED, "running"), (lc.TASK_RESTART_SIGNAL, None), (lc.TASK_KILLED, "dead")):
        state = lc.apply_event(state, lc.new_event(ev_type, 1), new)
    state = lc.apply_event(state, lc.new_event(lc.TASK_KILLING, 2, fails_task=True))
    state = lc.apply_event(state, lc.new_event(lc.TASK_KILLED, 3), "dead")
    after = restarted_state(state, 4, "User requested restart")
    assert after.state == "pending" and after.finished_at is None and not after.failed
    assert [e.type for e in after.events][-2:] == [lc.TASK_KILLING, lc.TASK_RESTARTING]
    assert after.restarts == 1 and after.events[-1].display_message.startswith("User requested restart")
