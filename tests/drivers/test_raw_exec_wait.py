"""raw_exec's wait_task: exit.json is polled often, the supervisor's liveness (a psutil
look-up) about once a second; a supervisor that dies is still noticed."""

import asyncio
import os
import signal

from yurt.drivers import raw_exec
from yurt.drivers.raw_exec import RawExecDriver


async def test_a_killed_supervisor_is_noticed_and_liveness_is_checked_rarely(make_task, monkeypatch):
    driver = RawExecDriver(enabled=True)
    handle = await driver.start_task(make_task({"command": "/bin/sleep", "args": ["30"]}))
    checks = []
    real_alive = driver._supervisor_alive

    def counting_alive(h):
        checks.append(asyncio.get_running_loop().time())
        return real_alive(h)

    monkeypatch.setattr(driver, "_supervisor_alive", counting_alive)
    waiting = asyncio.create_task(driver.wait_task(handle))
    try:
        await asyncio.sleep(0.6)  # ~12 polls of exit.json
        assert not waiting.done()
        assert 1 <= len(checks) <= 2  # not one psutil look-up per poll
        os.kill(handle.supervisor_pid, signal.SIGKILL)
        result = await asyncio.wait_for(waiting, raw_exec.SUPERVISOR_CHECK_INTERVAL + 10)
        assert result.exit_code == -1 and "task supervisor died; task left running" in result.err
    finally:
        waiting.cancel()
        for pid in (handle.pid, handle.supervisor_pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


async def test_a_task_exit_is_reported_with_its_code(make_task):
    driver = RawExecDriver(enabled=True)
    handle = await driver.start_task(make_task({"command": "/bin/sh", "args": ["-c", "sleep 0.2; exit 4"]}))
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert result.exit_code == 4


async def test_the_exit_comes_from_the_supervisors_report_not_only_the_poll(make_task, monkeypatch):
    monkeypatch.setattr(raw_exec, "POLL_INTERVAL", 60.0)  # a poll would not come within the test
    monkeypatch.setattr(raw_exec, "SUPERVISOR_CHECK_INTERVAL", 60.0)
    driver = RawExecDriver(enabled=True)
    handle = await driver.start_task(make_task({"command": "/bin/sh", "args": ["-c", "sleep 0.3; exit 5"]}))
    result = await asyncio.wait_for(driver.wait_task(handle), 20)
    assert result.exit_code == 5
