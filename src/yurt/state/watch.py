"""Waiting for table changes: the basis of blocking queries.

Waiters register a future per table they watch; a change to a table resolves only
the futures registered for that table, so many thousands of idle blocking queries
on other tables cost nothing per write. A waiter may also be a `CallbackWaiter` (no
future, no task: the HTTP layer's parked blocking GETs): those a change wakes are called
together in one loop callback. A callback waiter watched with `keep=True` (the RPC listener's
alloc watches) stays watched through its wakes until `forget`: a waiter that mostly goes
back to waiting after a wake does not register again each time. One that says so
(`versions_only`) is not woken by a write that changed no node's alloc version map
(`notify(..., versions_changed=False)`: a batch of client status reports).
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable


log = logging.getLogger(__name__)


class CallbackWaiter:
    """A waiter that is called back (`wake()`, on its loop) instead of resolving a future.
    `loop` is the loop it runs on; `tables` what it watches, `kept` whether it stays watched
    after a wake (both set by `ChangeWatchers.watch`). `versions_only` (a kept waiter's): only
    a write that may change a node's `{alloc ID: AllocModifyIndex}` map can give it anything."""

    __slots__ = ("kept", "loop", "tables")
    versions_only = False

    def wake(self) -> None:
        raise NotImplementedError


class ChangeWatchers:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = {}
        self._kept: dict[str, set[CallbackWaiter]] = {}  # `watch(keep=True)`: not taken out by a wake
        self._lock = threading.Lock()

    def waiting(self) -> int:
        return sum(len(s) for s in self._waiters.values()) + sum(len(s) for s in self._kept.values())

    def notify(self, tables: Iterable[str], versions_changed: bool = True) -> None:
        """Wake the waiters of `tables`; callable from any thread. `versions_changed=False`:
        the write changed no node's alloc version map (`StateReader.alloc_versions_by_node`),
        so kept waiters with `versions_only` stay asleep."""
        woken: list[asyncio.Future] = []
        if not isinstance(tables, (set, frozenset, tuple, list)):
            tables = tuple(tables)  # read twice below
        with self._lock:
            pop = self._waiters.pop
            for table in tables:
                waiters = pop(table, None)
                if waiters:
                    woken.extend(waiters)
            kept = self._kept
            if kept:
                for table in kept.keys() & tables:  # usually few of the tables written: at C speed
                    if versions_changed:
                        woken.extend(kept[table])
                    else:
                        woken.extend([w for w in kept[table] if not w.versions_only])
        if not woken:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        batches: dict = {}
        for fut in woken:
            if isinstance(fut, CallbackWaiter):
                batches.setdefault(fut.loop, []).append(fut)
                continue
            loop = fut.get_loop()
            if loop is running:
                _wake(fut)
            else:
                try:
                    loop.call_soon_threadsafe(_wake, fut)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    pass
        for loop, batch in batches.items():  # called back after this write's own work, all in one go
            try:
                if loop is running:
                    loop.call_soon(_wake_all, batch)
                else:
                    loop.call_soon_threadsafe(_wake_all, batch)
            except RuntimeError:
                pass

    def watch(self, tables: tuple[str, ...], waiter: CallbackWaiter, keep: bool = False) -> None:
        """Call `waiter.wake()` (once) at the next change to one of `tables`; `forget` undoes it.
        `keep`: at every change until `forget` (one wake per change and per table; a wake
        may come after `forget` when the change was before it, so the waiter checks)."""
        waiter.tables, waiter.kept = tables, keep
        into = self._kept if keep else self._waiters
        with self._lock:
            for table in tables:
                waiters = into.get(table)
                if waiters is None:
                    into[table] = {waiter}
                else:
                    waiters.add(waiter)

    def forget(self, waiter: CallbackWaiter) -> None:
        self._forget(waiter.tables, waiter, self._kept if getattr(waiter, "kept", False) else self._waiters)

    def watched(self) -> tuple[str, ...]:
        """Every table (or per-node key) something waits on now."""
        with self._lock:
            return (*self._waiters, *self._kept)

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

    def _forget(self, tables: tuple[str, ...], fut, into: dict | None = None) -> None:
        into = self._waiters if into is None else into
        with self._lock:
            for table in tables:
                waiters = into.get(table)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del into[table]


def _wake_all(batch: list[CallbackWaiter]) -> None:
    seen = set()
    for waiter in batch:
        if len(waiter.tables) > 1:  # woken through two of its tables by one change: once
            if waiter in seen:
                continue
            seen.add(waiter)
        try:
            waiter.wake()
        except Exception:  # noqa: BLE001 - one waiter's failure must not strand the others
            log.exception("change waiter %r failed", waiter)


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
