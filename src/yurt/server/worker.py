"""Scheduling workers: dequeue an eval, run the (pure, CPU-bound) scheduler in a thread,
and serve its Planner calls by handing plans and eval updates back to the event loop."""

import asyncio
import logging
from collections.abc import Callable

from yurt.structs import Evaluation, Plan, PlanResult, evolve

from .broker import BrokerError, EvalBroker
from .plan_apply import PlanApplier, call_from_thread

log = logging.getLogger(__name__)

SCHEDULER_TYPES = ["service", "batch", "system", "sysbatch"]
SNAPSHOT_TABLES = ["jobs", "evals", "allocs", "nodes"]
PLANNER_CALL_TIMEOUT = 60.0
STOP_GRACE = 10.0


async def snapshot_at_least(store, index: int, timeout: float = 5.0):
    """A snapshot whose index is >= `index` (waits for the state to catch up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while store.latest_index < index:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"state did not reach index {index} (at {store.latest_index})")
        await store.wait_for_change(SNAPSHOT_TABLES, store.latest_index, remaining)
    return store.snapshot()


class WorkerPlanner:
    """The Planner one scheduler run talks to. Its methods run in the worker's thread."""

    def __init__(self, worker: "Worker", ev: Evaluation, token: str, loop: asyncio.AbstractEventLoop):
        self.worker = worker
        self.eval = ev
        self.token = token
        self.loop = loop

    def _on_loop(self, coro):
        return self._wait(asyncio.run_coroutine_threadsafe(coro, self.loop))

    @staticmethod
    def _wait(future):
        try:
            return future.result(timeout=PLANNER_CALL_TIMEOUT)
        except BaseException:
            future.cancel()
            raise

    def submit_plan(self, plan: Plan):
        plan.eval_id = plan.eval_id or self.eval.id
        plan.eval_token = self.token
        worker = self.worker
        future = worker.applier.submit_from_thread(
            plan, self.loop, lambda: worker.broker.outstanding_reset(self.eval.id, self.token))
        result: PlanResult = self._wait(future)
        if result.refresh_index:
            snapshot = self._on_loop(snapshot_at_least(self.worker.store, result.refresh_index))
            return result, snapshot
        return result, None

    def _upsert(self, ev: Evaluation) -> None:
        """Apply the eval update in one turn of the event loop (a plain callback, not a
        coroutine: a busy loop's turns are long)."""
        from yurt.state.commands import EvalUpsert

        store, now_ns = self.worker.store, self.worker.now_ns
        self._wait(call_from_thread(self.loop, lambda: store.apply(EvalUpsert(evals=[evolve(ev, modify_time=now_ns())]))))

    def update_eval(self, ev: Evaluation) -> None:
        self._upsert(ev)

    def create_eval(self, ev: Evaluation) -> None:
        if not ev.create_time:
            ev = evolve(ev, create_time=self.worker.now_ns())
        self._upsert(ev)

    def reblock_eval(self, ev: Evaluation) -> None:
        self._upsert(ev)


class Worker:
    def __init__(
        self,
        name: str,
        store,
        broker: EvalBroker,
        applier: PlanApplier,
        now_ns: Callable[[], int],
        types: list[str] | None = None,
    ):
        self.name = name
        self.store = store
        self.broker = broker
        self.applier = applier
        self.now_ns = now_ns
        self.types = types or SCHEDULER_TYPES
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.processed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let the eval in hand finish (its scheduler thread cannot be cancelled), then end."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE)
        except TimeoutError:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while not self._stopping:
            got = await self.broker.dequeue(self.types, timeout=1.0)
            if got is None:
                if not self.broker.enabled and not self._stopping:
                    await asyncio.sleep(0.1)
                continue
            ev, token = got
            await self.process(ev, token)

    async def process(self, ev: Evaluation, token: str) -> None:
        try:
            await self._schedule(ev, token)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: eval %s (job %s) failed", self.name, ev.id, ev.job_id)
            self._finish(self.broker.nack, ev, token)
            return
        self.processed += 1
        self._finish(self.broker.ack, ev, token)

    @staticmethod
    def _finish(action, ev: Evaluation, token: str) -> None:
        try:
            action(ev.id, token)
        except BrokerError as exc:  # nack timeout fired, or leadership was lost
            log.warning("eval %s: %s", ev.id, exc)

    async def _schedule(self, ev: Evaluation, token: str) -> None:
        from yurt.scheduler import new_scheduler

        snapshot = await snapshot_at_least(self.store, ev.modify_index)
        planner = WorkerPlanner(self, ev, token, asyncio.get_running_loop())
        scheduler = new_scheduler(
            ev.type, snapshot, planner, now_ns=self.now_ns(), config=snapshot.scheduler_config()
        )
        await asyncio.to_thread(scheduler.process, ev)
