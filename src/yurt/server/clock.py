"""An injectable clock: the server's loops read time only through one of these."""

import time
from typing import Protocol

NS_PER_SECOND = 1_000_000_000


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def now_ns(clock: Clock) -> int:
    return int(clock.now() * NS_PER_SECOND)
