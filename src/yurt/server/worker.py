"""Scheduling workers: dequeue an eval, run the (pure, CPU-bound) scheduler in a thread,
and serve its Planner calls by handing plans and eval updates back to the event loop.

A busy loop (a registration storm: thousands of requests per turn) takes long turns, and a
scheduler thread waits a whole turn for each thing it hands to the loop. So the eval's final
update is not waited for: it is applied, and the eval acked (or nacked when that update
fails), in the one loop callback that ends the eval. System and sysbatch evals (each over
every node, and after a storm one per system job) run several at a time per worker, each
in its own thread: they wait on the loop, not on the CPU (the GIL serializes the threads).
"""

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable

from yurt.gcpolicy import paused as paused_gc
from yurt.structs import Evaluation, Plan, PlanResult, evolve

from .broker import BrokerError, EvalBroker
from .plan_apply import PlanApplier, call_from_thread

log = logging.getLogger(__name__)

SCHEDULER_TYPES = ["service", "batch", "system", "sysbatch"]
SNAPSHOT_TABLES = ["jobs", "evals", "allocs", "nodes"]
PLANNER_CALL_TIMEOUT = 60.0
STOP_GRACE = 10.0
# System/sysbatch evals one worker keeps in flight (each holds its job: one eval per job).
SYSTEM_EVALS_PER_WORKER = 5
SYSTEM_TYPES = frozenset(("system", "sysbatch"))


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
        self._deferred: list[Evaluation] = []  # the eval's final update, applied with its ack
        self._lock = threading.Lock()

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
        self._flush_deferred()
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

    def _command(self, evals: list[Evaluation]):
        from yurt.state.commands import EvalUpsert

        now = self.worker.now_ns()
        return EvalUpsert(evals=[evolve(ev, modify_time=now) for ev in evals])

    def _upsert(self, ev: Evaluation) -> None:
        """Apply the eval update in one turn of the event loop (a plain callback, not a
        coroutine: a busy loop's turns are long)."""
        store, command = self.worker.store, self._command([ev])
        self._wait(call_from_thread(self.loop, lambda: store.apply(command)))

    def _flush_deferred(self) -> None:
        """A deferred update goes before anything the scheduler hands the loop after it."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
        for ev in deferred:
            self._upsert(ev)

    def apply_deferred(self) -> None:
        """On the loop, once the scheduler returned: store the eval's final update."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
        if deferred:
            self.worker.store.apply(self._command(deferred))

    def update_eval(self, ev: Evaluation) -> None:
        with self._lock:
            self._deferred.append(ev)

    def create_eval(self, ev: Evaluation) -> None:
        self._flush_deferred()
        if not ev.create_time:
            ev = evolve(ev, create_time=self.worker.now_ns())
        self._upsert(ev)

    def reblock_eval(self, ev: Evaluation) -> None:
        self.update_eval(ev)


class Worker:
    def __init__(
        self,
        name: str,
        store,
        broker: EvalBroker,
        applier: PlanApplier,
        now_ns: Callable[[], int],
        types: list[str] | None = None,
        system_evals: int = SYSTEM_EVALS_PER_WORKER,
    ):
        self.name = name
        self.store = store
        self.broker = broker
        self.applier = applier
        self.now_ns = now_ns
        self.types = types or SCHEDULER_TYPES
        self.system_evals = max(1, system_evals)
        self._task: asyncio.Task | None = None
        self._system_tasks: set[asyncio.Task] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._stopping = False
        self.processed = 0

    def start(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(self.system_evals + 1, thread_name_prefix=self.name)
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let the evals in hand finish (a scheduler thread cannot be cancelled), then end."""
        self._stopping = True
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._system_tasks) if t is not None]
        if tasks:
            _, pending = await asyncio.wait([asyncio.shield(t) for t in tasks], timeout=STOP_GRACE)
            for t in tasks:
                if not t.done():
                    t.cancel()
            for t in tasks:
                try:
                    await t
                except asyncio.CancelledError:
                    pass
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _run(self) -> None:
        while not self._stopping:
            if len(self._system_tasks) >= self.system_evals:
                await asyncio.wait(self._system_tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            got = await self.broker.dequeue(self.types, timeout=1.0)
            if got is None:
                if not self.broker.enabled and not self._stopping:
                    await asyncio.sleep(0.1)
                continue
            ev, token = got
            if ev.type in SYSTEM_TYPES:
                # alongside the others: it waits on the loop far more than it computes
                task = asyncio.create_task(self.process(ev, token))
                self._system_tasks.add(task)
                task.add_done_callback(self._system_tasks.discard)
                continue
            await self.process(ev, token)

    async def process(self, ev: Evaluation, token: str) -> None:
        """Schedule the eval in a thread; its final update, then the ack (or the nack when
        the scheduler or that update failed), are done in one loop callback."""
        from yurt.scheduler import new_scheduler

        loop = asyncio.get_running_loop()
        try:
            snapshot = await snapshot_at_least(self.store, ev.modify_index)
            planner = WorkerPlanner(self, ev, token, loop)
            scheduler = new_scheduler(
                ev.type, snapshot, planner, now_ns=self.now_ns(), config=snapshot.scheduler_config()
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the eval goes back to the broker
            self._failed(ev, token, exc)
            return
        done = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if error is None:
                try:
                    planner.apply_deferred()
                except Exception as exc:  # noqa: BLE001 - the eval goes back to the broker
                    error = exc
            if error is not None:
                self._failed(ev, token, error)
            else:
                self.processed += 1
                self._finish(self.broker.ack, ev, token)
            if not done.done():
                done.set_result(None)

        def run() -> None:
            error = None
            try:
                scheduler.process(ev)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop
                error = exc
            try:
                loop.call_soon_threadsafe(finish, error)
            except RuntimeError:  # the loop is closed: the server stopped
                pass

        executor = self._executor
        if executor is None:  # not started (tests drive `process` directly)
            executor = self._executor = concurrent.futures.ThreadPoolExecutor(
                self.system_evals + 1, thread_name_prefix=self.name)
        # Collections wait for the eval's end, and for its objects to be freed: a collection
        # due when the pause ends in the scheduler's thread walked the scheduler, its plan
        # and what the snapshot alone held (all alive until this frame lets go of them).
        with paused_gc():
            try:
                executor.submit(run)
                await done
            finally:
                scheduler = planner = snapshot = None  # noqa: F841 - freed before the pause ends

    def _failed(self, ev: Evaluation, token: str, error: BaseException) -> None:
        log.error("%s: eval %s (job %s) failed", self.name, ev.id, ev.job_id, exc_info=error)
        self._finish(self.broker.nack, ev, token)

    @staticmethod
    def _finish(action, ev: Evaluation, token: str) -> None:
        try:
            action(ev.id, token)
        except BrokerError as exc:  # nack timeout fired, or leadership was lost
            log.warning("eval %s: %s", ev.id, exc)
