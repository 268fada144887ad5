import asyncio
import os

import pytest

from yurt.drivers.base import DriverError
from yurt.drivers.logrotate import FileRotator, log_indexes
from yurt.drivers.raw_exec import RawExecDriver


def test_disabled_by_default():
    fp = RawExecDriver().fingerprint()
    assert not fp.detected and "driver.raw_exec" not in fp.attributes
    assert RawExecDriver(enabled=True).fingerprint().attributes["driver.raw_exec"] == "1"


def test_command_is_required():
    errors = RawExecDriver(enabled=True).validate_config({"args": ["x"]})
    assert any('"command"' in e for e in errors)


async def test_disabled_driver_refuses_to_start(make_task):
    with pytest.raises(DriverError, match="disabled"):
        await RawExecDriver().start_task(make_task({"command": "/bin/true"}))


async def test_missing_binary_is_a_start_error(make_task):
    with pytest.raises(DriverError, match="failed to start"):
        await RawExecDriver(enabled=True).start_task(make_task({"command": "/no/such/binary"}))


async def test_stdout_stderr_and_env_reach_the_log_files(make_task):
    cfg = make_task({"command": "/bin/sh", "args": ["-c", "echo out $NOMAD_TASK_NAME; echo err >&2; pwd"]})
    driver = RawExecDriver(enabled=True)
    handle = await driver.start_task(cfg)
    await asyncio.wait_for(driver.wait_task(handle), 10)
    out = open(cfg.stdout_base + ".0").read()
    assert out.splitlines() == ["out web", cfg.task_dir]
    assert open(cfg.stderr_base + ".0").read() == "err\n"


def test_file_rotator_rotates_and_purges(tmp_path):
    base = str(tmp_path / "web.stdout")
    rot = FileRotator(base, max_files=2, max_file_size=10)
    rot.write(b"0123456789abcdefghij" + b"KLMNO")
    rot.close()
    assert log_indexes(base) == [1, 2]
    assert open(base + ".1").read() == "abcdefghij"
    assert open(base + ".2").read() == "KLMNO"
    again = FileRotator(base, max_files=2, max_file_size=10)  # a restarted task appends
    again.write(b"pq")
    again.close()
    assert open(base + ".2").read() == "KLMNOpq"
    assert not os.path.exists(base + ".0")


async def test_rotation_through_the_supervisor(make_task):
    cfg = make_task({"command": "/bin/sh", "args": ["-c", "for i in 1 2 3 4 5 6; do echo 0123456789; done"]})
    cfg.max_files = 3
    cfg.max_file_size_mb = 0
    driver = RawExecDriver(enabled=True)
    spec = driver._spec(cfg)
    assert spec["max_files"] == 3
    handle = await driver.start_task(cfg)
    await asyncio.wait_for(driver.wait_task(handle), 10)
    # max_file_size_mb=0 is clamped to 1 byte files: only the newest 3 files remain
    assert len(log_indexes(cfg.stdout_base)) == 3


async def test_disabled_logs_are_discarded(make_task):
    cfg = make_task({"command": "/bin/sh", "args": ["-c", "echo lost; echo lost >&2"]})
    cfg.logs_disabled = True
    driver = RawExecDriver(enabled=True)
    handle = await driver.start_task(cfg)
    result = await asyncio.wait_for(driver.wait_task(handle), 10)
    assert result.successful
    assert log_indexes(cfg.stdout_base) == [] and log_indexes(cfg.stderr_base) == []
