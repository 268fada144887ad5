"""One suite, every driver: start, wait, stop (kill_timeout / kill_signal), signal, recover."""

import asyncio
import time

import pytest

from yurt.drivers.base import DriverError, TaskHandle
from yurt.drivers.mock import MockDriver
from yurt.drivers.raw_exec import RawExecDriver

from test_isolation_conformance import ExecFlavor, JavaFlavor  # the isolating drivers' flavors
from docker_image import DockerFlavor  # skips without a Docker engine


class RawExecFlavor:
    name = "raw_exec"

    def driver(self):
        return RawExecDriver(enabled=True)

    def runs(self, seconds: float, exit_code: int = 0) -> dict:
        return {"command": "/bin/sh", "args": ["-c", f"sleep {seconds}; exit {exit_code}"]}

    def ignores_signals(self, seconds: float) -> dict:
        script = f"trap '' INT TERM; sleep {seconds} & wait; sleep {seconds}"
        return {"command": "/bin/sh", "args": ["-c", script]}


class MockFlavor:
    name = "mock_driver"

    def driver(self):
        return MockDriver()

    def runs(self, seconds: float, exit_code: int = 0) -> dict:
        return {"run_for": f"{seconds}s", "exit_code": exit_code}

    def ignores_signals(self, seconds: float) -> dict:
        return {"run_for": f"{seconds}s", "kill_after": f"{seconds}s"}


@pytest.fixture(params=[RawExecFlavor(), MockFlavor(), ExecFlavor(), JavaFlavor(), DockerFlavor()], ids=lambda f: f.name)
async def flavor(request, tmp_path_factory):
    if hasattr(request.param, "prepare"):
        request.param.prepare(tmp_path_factory)  # may skip, naming what the machine lacks
    yield request.param
    if hasattr(request.param, "cleanup"):
        await request.param.cleanup()  # destroys the tasks the flavor's drivers started


async def test_start_and_wait_reports_exit_code(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(0.1, exit_code=3)))
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert result.exit_code == 3
    assert not result.successful
    assert driver.inspect_task(handle).state == "exited"


async def test_successful_exit(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(0)))
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert result.successful


async def test_stop_kills_a_running_task(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(30)))
    assert driver.inspect_task(handle).state == "running"
    start = time.monotonic()
    await driver.stop_task(handle, 5_000_000_000, "SIGTERM")
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert time.monotonic() - start < 5
    assert result.signal == 15
    assert result.exit_code == 128 + 15


async def test_stop_with_the_default_kill_signal(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(30)))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await driver.stop_task(handle, 5_000_000_000, "SIGINT")
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert time.monotonic() - start < 4
    assert result.signal == 2


async def test_stop_escalates_to_sigkill_after_kill_timeout(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.ignores_signals(30)))
    await asyncio.sleep(0.2)
    start = time.monotonic()
    await driver.stop_task(handle, 500_000_000, "SIGINT")
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    elapsed = time.monotonic() - start
    assert result.signal == 9
    assert 0.4 <= elapsed < 5


async def test_signal_running_task_and_error_after_exit(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(30)))
    await driver.signal_task(handle, "SIGHUP" if flavor.name == "mock_driver" else "SIGCONT")
    with pytest.raises(DriverError):
        await driver.signal_task(handle, "SIGNOPE")
    await driver.stop_task(handle, 1_000_000_000, "SIGKILL")
    await driver.wait_task(handle)
    with pytest.raises(DriverError):
        await driver.signal_task(handle, "SIGHUP")
    await driver.destroy_task(handle)


async def test_recover_after_simulated_agent_restart(flavor, make_task):
    handle = await flavor.driver().start_task(make_task(flavor.runs(0.5, exit_code=4)))
    stored = TaskHandle.from_dict(handle.to_dict())  # what the local state db keeps
    fresh = flavor.driver()  # a new agent's driver instance
    await fresh.recover_task(stored)
    assert fresh.inspect_task(stored).state == "running"
    result = await asyncio.wait_for(fresh.wait_task(stored), 10)
    assert result.exit_code == 4


async def test_recover_a_task_that_exited_meanwhile(flavor, make_task):
    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(0, exit_code=2)))
    await asyncio.wait_for(driver.wait_task(handle), 10)
    fresh = flavor.driver()
    await fresh.recover_task(TaskHandle.from_dict(handle.to_dict()))
    result = await fresh.wait_task(handle)
    assert result.exit_code == 2


def test_validate_config_names_the_key(flavor):
    errors = flavor.driver().validate_config({"bogus_key": 1})
    assert any('"bogus_key"' in e for e in errors)


async def _inputs(*messages):
    for message in messages:
        yield message


def _collector():
    out = {"stdout": b"", "stderr": b""}

    async def output(stream: str, data: bytes) -> None:
        out[stream] += data

    return out, output


async def test_exec_streaming_pipes_stdin_stdout_stderr_and_returns_the_exit_code(flavor, make_task):
    from yurt.drivers.base import ExecInput

    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(30)))
    out, output = _collector()
    command = ["/bin/sh", "-c", "echo out; echo err >&2; read x; echo got $x; exit 3"]
    stdin = _inputs(ExecInput(data=b"hel"), ExecInput(data=b"lo\n"), ExecInput(close=True))
    code = await asyncio.wait_for(driver.exec_streaming(handle, command, False, stdin, output), 30)
    if flavor.name == "mock_driver":  # echoes the command line, then stdin
        assert (code, out["stdout"]) == (0, " ".join(command).encode() + b"\nhello\n")
    else:
        assert (code, out["stdout"], out["stderr"]) == (3, b"out\ngot hello\n", b"err\n")
    assert driver.inspect_task(handle).state == "running"  # the task itself goes on
    await driver.stop_task(handle, 1_000_000_000, "SIGKILL")
    await driver.wait_task(handle)
    with pytest.raises(DriverError, match="not running"):
        await driver.exec_streaming(handle, ["true"], False, _inputs(), output)


async def test_exec_streaming_in_a_tty_runs_an_interactive_shell(flavor, make_task):
    from yurt.drivers.base import ExecInput

    driver = flavor.driver()
    handle = await driver.start_task(make_task(flavor.runs(30)))
    out, output = _collector()
    stdin = _inputs(ExecInput(tty_size=(40, 100)), ExecInput(data=b"echo $((1+2))x; stty size\n"),
                    ExecInput(data=b"exit 3\n"))
    code = await asyncio.wait_for(driver.exec_streaming(handle, ["/bin/sh"], True, stdin, output), 30)
    if flavor.name == "mock_driver":
        assert code == 0 and b"echo $((1+2))x" in out["stdout"]
    else:
        assert code == 3, out
        assert b"3x" in out["stdout"] and b"40 100" in out["stdout"], out  # evaluated by a shell with a 40x100 pty
        assert out["stderr"] == b""  # a terminal has one output stream
    await driver.stop_task(handle, 1_000_000_000, "SIGKILL")
    await driver.wait_task(handle)
