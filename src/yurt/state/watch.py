"""Waiting for table changes: the basis of blocking queries.

Waiters register a future per table they watch; a change to a table resolves only
the futures registered for that table, so many thousands of idle blocking queries
on other tables cost nothing per write.
"""

import asyncio
import threading
from collections.abc import Callable, Iterable


class ChangeWatchers:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = {}
        self._lock = threading.Lock()

    def waiting(self) -> int:
        return sum(len(s) for s in self._waiters.values())

    def notify(self, tables: Iterable[str]) -> None:
        """Wake the waiters of `tables`; callable from any thread."""
        woken: list[asyncio.Future] = []
        with self._lock:
            for table in tables:
                waiters = self._waiters.pop(table, None)
                if waiters:
                    woken.extend(waiters)
        if not woken:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for fut in woken:
            loop = fut.get_loop()
            if loop is running:
                _wake(fut)
            else:
                try:
                    loop.call_soon_threadsafe(_wake, fut)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    pass

    async def wait(
        self, current_index: Callable[[], int], tables: Iterable[str], min_index: int, timeout: float
    ) -> int:
        """Return `current_index()` once it is > `min_index`, or at the timeout."""
        tables = tuple(tables)
        index = current_index()
        if index > min_index or timeout <= 0:
            return index
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            fut = loop.create_future()
            with self._lock:
                for table in tables:
                    self._waiters.setdefault(table, set()).add(fut)
            timer = loop.call_at(deadline, _wake, fut)
            try:
                await fut
            finally:
                timer.cancel()
                self._forget(tables, fut)
            index = current_index()
            if index > min_index or loop.time() >= deadline:
                return index

    def _forget(self, tables: tuple[str, ...], fut: asyncio.Future) -> None:
        with self._lock:
            for table in tables:
                waiters = self._waiters.get(table)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiters[table]


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
