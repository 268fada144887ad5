"""Allocation stop (a desired transition plus an eval) and batched client updates."""

import asyncio
import logging
import time
from collections.abc import Callable

from yurt.structs import (
    EVAL_STATUS_PENDING,
    TRIGGER_ALLOC_STOP,
    DesiredTransition,
    Evaluation,
    generate_uuid,
)

from .errors import EndpointError

log = logging.getLogger(__name__)


def _eval_for(job, trigger: str, now_ns: int, job_id: str, namespace: str, typ: str) -> Evaluation:
    return Evaluation(
        id=generate_uuid(),
        namespace=namespace,
        priority=job.priority if job else 50,
        type=job.type if job else typ,
        triggered_by=trigger,
        job_id=job_id,
        job_modify_index=job.job_modify_index if job else 0,
        status=EVAL_STATUS_PENDING,
        create_time=now_ns,
        modify_time=now_ns,
    )


def stop_alloc(server, alloc_id: str) -> tuple[str, int]:
    """Ask the scheduler to stop (and replace) the alloc; returns (eval id, index)."""
    from yurt.state.commands import AllocDesiredTransition

    snapshot = server.state.snapshot()
    alloc = snapshot.alloc_by_id(alloc_id)
    if alloc is None:
        raise EndpointError(404, "allocation not found")
    job = snapshot.job_by_id(alloc.namespace, alloc.job_id) or alloc.job
    typ = alloc.job.type if alloc.job else "service"
    ev = _eval_for(job, TRIGGER_ALLOC_STOP, server.now_ns(), alloc.job_id, alloc.namespace, typ)
    index = server.state.apply(
        AllocDesiredTransition(transitions={alloc.id: DesiredTransition(migrate=True)}, evals=[ev])
    )
    return ev.id, index


class AllocUpdateBatcher:
    """Client alloc updates become one command per `window` seconds at most; an update
    arriving after a quiet window is applied at once (with whatever came in the same loop turn)."""

    def __init__(self, server, window: float, now_ns: Callable[[], int]):
        self.server = server
        self.window = window
        self.now_ns = now_ns
        self._pending: dict[str, object] = {}
        self._futures: list[asyncio.Future] = []
        self._callbacks: list[Callable[[int | None, Exception | None], None]] = []
        self._flush_task: asyncio.Task | None = None
        self._last_flush = float("-inf")

    async def submit(self, updates: list) -> int:
        """Queue the updates; returns the index of the command that carried them. Updates of
        allocs the server no longer has (garbage-collected, purged) are skipped, as Nomad's
        Node.UpdateAlloc does, so they cannot make a client drop the rest of its batch."""
        index = self.submit_nowait(updates)
        return index if isinstance(index, int) else await index

    def submit_nowait(self, updates: list) -> "int | asyncio.Future[int]":
        """`submit` without a coroutine: the index at once when there is no update, else a
        future of the index of the flush that carries them."""
        index = self._queue(updates)
        if index is not None:
            return index
        future = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        return future

    def submit_then(self, updates: list, done: Callable[[int | None, Exception | None], None]) -> int | None:
        """`submit` without a coroutine or future (the RPC listener answers from `done`): the
        index at once when there is no update (`done` is not called), else None, and
        `done(index, None)` (or `done(None, error)`) is called by the flush that applies
        them, right after its commit."""
        index = self._queue(updates)
        if index is None:
            self._callbacks.append(done)
        return index

    def _queue(self, updates: list) -> int | None:
        """Queue the updates, with a flush due; the index at once when there is none.

        No lookup here: the FSM skips the updates of allocs it does not have and leaves
        them out of the command it logs (`apply_client_update`), and a flush none of whose
        updates is of a stored alloc commits nothing (`flush`). Their request is answered by
        the flush, as Nomad's Node.UpdateAlloc answers from its batch's commit."""
        if not updates:
            return self.server.state.snapshot().index
        pending = self._pending
        for update in updates:
            pending[update.id] = update  # a later update of one alloc wins
        task = self._flush_task
        if task is None or task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())
        return None

    async def _flush_later(self) -> None:
        # at most one batch per window, but the first after a quiet spell goes at once
        # (after coalescing what arrives in this loop turn)
        await asyncio.sleep(max(0.0, self._last_flush + self.window - time.monotonic()))
        self._last_flush = time.monotonic()
        self.flush()

    def close(self) -> None:
        """Apply what is queued now (server stopping)."""
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_task.cancel()
        self._flush_task = None
        self.flush()

    def flush(self) -> None:
        from yurt.state.commands import AllocClientUpdate

        updates, futures, callbacks = list(self._pending.values()), self._futures, self._callbacks
        self._pending, self._futures, self._callbacks = {}, [], []
        if not updates:
            return
        from yurt.server.plan_apply import usage_carrier

        try:
            snapshot = self.server.state.snapshot()
            alloc_by_id = snapshot.alloc_by_id
            # (the first update is of a stored alloc but for a purge or GC just before)
            if not any(alloc_by_id(update.id) is not None for update in updates):
                index = snapshot.index  # all of allocs the server no longer has: no commit
            else:
                now = self.now_ns()
                # the store's carrier keeps the scheduler's cached usage of the reporting nodes
                # valid across this commit (a terminal report frees what the alloc held)
                usage_carrier(self.server.state)
                # evals None: the FSM makes Node.UpdateAlloc's follow-up evals (of failed and
                # reconnected allocs) from the stored allocs it replaces, no lookup here
                index = self.server.state.apply(AllocClientUpdate(allocs=updates, evals=None, updated_at=now))
        except Exception as exc:
            for f in futures:
                if not f.done():
                    f.set_exception(exc)
            _call_back(callbacks, None, exc)
            return
        for f in futures:
            if not f.done():
                f.set_result(index)
        _call_back(callbacks, index, None)


def _call_back(callbacks: list, index: int | None, exc: Exception | None) -> None:
    for done in callbacks:
        try:
            done(index, exc)
        except Exception:  # noqa: BLE001 - one waiter's failure must not strand the others
            log.exception("alloc update callback %r failed", done)
