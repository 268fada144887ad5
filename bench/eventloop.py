"""The bench process's event loop: `BENCH_EVENT_LOOP=uvloop|asyncio` picks it for an A/B;
otherwise a scenario module's `EVENT_LOOP` (default asyncio)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

ENV = "BENCH_EVENT_LOOP"


def loop_factory(default: str = "asyncio"):
    choice = os.environ.get(ENV) or default
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    if choice != "asyncio":
        raise ValueError(f"{ENV}={choice!r}: choose uvloop or asyncio")
    return None


def run(coro: Coroutine[Any, Any, Any], default: str = "asyncio") -> Any:
    with asyncio.Runner(loop_factory=loop_factory(default)) as runner:
        return runner.run(coro)
