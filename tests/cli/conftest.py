"""Fixtures: a fake Nomad API and a runner that calls `yurt.cli.main.main` with a fixed clock."""

import io
import time
from typing import Callable

import pytest
from cli_fakes import NOW, FakeNomad, Result

from yurt.cli.command import Context
from yurt.cli.main import main


@pytest.fixture
def fake() -> FakeNomad:
    return FakeNomad()


@pytest.fixture
def run_cli(fake: FakeNomad, monkeypatch) -> Callable[..., Result]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()

    def run(*argv: str, env: dict[str, str] | None = None, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(out=out, err=err, stdin=io.StringIO(stdin), env=env or {}, transport=fake.transport(),
                      now=lambda: NOW, sleep=lambda _s: None, poll_interval=0)
        code = main(list(argv), ctx)
        return Result(code, out.getvalue(), err.getvalue())

    return run
