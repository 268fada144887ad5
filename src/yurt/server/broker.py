"""The eval broker: ready evaluations handed to workers, at most one per job in flight.

Ordering is by priority (higher first), then create index (older first). Delivery is
at-least-once: a dequeued eval must be acked or nacked with its token; an eval not acked
within the nack timeout is nacked for the worker. After `delivery_limit` deliveries an
eval goes to the failed list, which the server turns into a `failed-follow-up` eval.

Evals superseded by a newer one of their job become cancelable; the leader writes them
canceled (Nomad's reaper, a background goroutine there). Here that write shares the event
loop with everything else, so the broker hands them out when it has been idle for
`cancel_quiet` seconds (no eval ready or unacked), or once the oldest has waited
`cancel_hold`: after a registration storm ~50,000 cancels otherwise land between the
system evals' plans and the nodes' reports that they run them.

The bookkeeping is synchronous and reads time from an injectable clock, so it is tested
without an event loop; `dequeue` is the one coroutine (it waits for work).
"""

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

from yurt.structs import Evaluation, generate_uuid

from .clock import NS_PER_SECOND, Clock, SystemClock


class BrokerError(Exception):
    """A worker acked or nacked an eval it does not hold (wrong ID or token)."""


@dataclass
class _Unacked:
    ev: Evaluation
    token: str
    deadline: float


@dataclass
class BrokerStats:
    total_ready: int = 0
    total_unacked: int = 0
    total_pending: int = 0
    total_waiting: int = 0
    total_failed: int = 0
    by_scheduler: dict[str, int] = field(default_factory=dict)


CANCEL_QUIET = 1.0  # seconds the broker is idle before it hands out cancelable evals
CANCEL_HOLD = 5.0  # seconds at most a cancelable eval is held back by a busy broker


def _ready_key(ev: Evaluation) -> tuple[int, int]:
    return (-ev.priority, ev.create_index)


class EvalBroker:
    def __init__(
        self,
        clock: Clock | None = None,
        nack_timeout: float = 60.0,
        delivery_limit: int = 3,
        initial_nack_delay: float = 1.0,
        subsequent_nack_delay: float = 20.0,
        cancel_quiet: float = CANCEL_QUIET,
        cancel_hold: float = CANCEL_HOLD,
    ):
        self.clock = clock or SystemClock()
        self.nack_timeout = nack_timeout
        self.delivery_limit = delivery_limit
        self.initial_nack_delay = initial_nack_delay
        self.subsequent_nack_delay = subsequent_nack_delay
        self.cancel_quiet = cancel_quiet
        self.cancel_hold = cancel_hold
        self.enabled = False
        self._seq = itertools.count()
        self._reset()

    def _reset(self) -> None:
        self._ready: dict[str, list] = {}  # scheduler type -> heap of (key, seq, eval)
        self._unack: dict[str, _Unacked] = {}
        self._job_in_flight: dict[tuple[str, str], str] = {}  # (ns, job) -> eval id
        self._pending: dict[tuple[str, str], list[Evaluation]] = {}
        self._delayed: list = []  # heap of (ready_at seconds, seq, eval)
        self._deliveries: dict[str, int] = {}
        self._tracked: set[str] = set()
        self.failed: list[Evaluation] = []
        self.cancelable: list[Evaluation] = []
        self._cancelable_at = 0.0  # when the oldest of `cancelable` became so
        self._busy_at = float("-inf")  # when the broker was last seen with an eval in hand
        self._waiters: set[asyncio.Event] = set()

    # -- lifecycle ---------------------------------------------------------------------

    def set_enabled(self, enabled: bool) -> None:
        """Enable on gaining leadership; disabling drops everything (the state keeps it)."""
        self.enabled = enabled
        if not enabled:
            waiters = self._waiters
            self._reset()
            for w in waiters:
                w.set()

    # -- enqueue -----------------------------------------------------------------------

    def enqueue(self, ev: Evaluation) -> None:
        """Track a pending eval. An eval already tracked (by ID) is ignored."""
        if not self.enabled or ev.id in self._tracked:
            return
        self._tracked.add(ev.id)
        if ev.wait_until and ev.wait_until / NS_PER_SECOND > self.clock.now():
            heapq.heappush(self._delayed, (ev.wait_until / NS_PER_SECOND, next(self._seq), ev))
            return
        self._make_ready(ev)

    def _make_ready(self, ev: Evaluation) -> None:
        key = (ev.namespace, ev.job_id)
        holder = self._job_in_flight.get(key)
        if holder is not None and holder != ev.id:
            self._pending.setdefault(key, []).append(ev)
            return
        self._job_in_flight[key] = ev.id
        heapq.heappush(self._ready.setdefault(ev.type, []), (_ready_key(ev), next(self._seq), ev))
        self._wake()

    def _wake(self) -> None:
        for w in self._waiters:
            w.set()

    # -- dequeue -----------------------------------------------------------------------

    def try_dequeue(self, types: list[str]) -> tuple[Evaluation, str] | None:
        """The best ready eval of the given scheduler types, now unacked, with its token."""
        best_type = None
        for typ in types:
            heap = self._ready.get(typ)
            if heap and (best_type is None or heap[0][:2] < self._ready[best_type][0][:2]):
                best_type = typ
        if best_type is None:
            return None
        _, _, ev = heapq.heappop(self._ready[best_type])
        token = generate_uuid()
        self._unack[ev.id] = _Unacked(ev, token, self.clock.now() + self.nack_timeout)
        self._deliveries[ev.id] = self._deliveries.get(ev.id, 0) + 1
        return ev, token

    async def dequeue(self, types: list[str], timeout: float) -> tuple[Evaluation, str] | None:
        """Wait up to `timeout` seconds (real time) for a ready eval."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.enabled:
            got = self.try_dequeue(types)
            if got is not None:
                return got
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            waiter = asyncio.Event()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter.wait(), remaining)
            except TimeoutError:
                return None
            finally:
                self._waiters.discard(waiter)
        return None

    # -- ack / nack --------------------------------------------------------------------

    def _take_unacked(self, eval_id: str, token: str) -> _Unacked:
        entry = self._unack.get(eval_id)
        if entry is None:
            raise BrokerError(f"Evaluation ID {eval_id!r} not found")
        if entry.token != token:
            raise BrokerError(f"Token does not match for Evaluation ID {eval_id!r}")
        return self._unack.pop(eval_id)

    def outstanding(self, eval_id: str) -> str | None:
        entry = self._unack.get(eval_id)
        return entry.token if entry else None

    def outstanding_reset(self, eval_id: str, token: str) -> None:
        """Push the nack deadline out (a worker still busy with the eval)."""
        entry = self._unack.get(eval_id)
        if entry is None or entry.token != token:
            raise BrokerError(f"Evaluation ID {eval_id!r} not outstanding")
        entry.deadline = self.clock.now() + self.nack_timeout

    def ack(self, eval_id: str, token: str) -> None:
        entry = self._take_unacked(eval_id, token)
        ev = entry.ev
        self._deliveries.pop(eval_id, None)
        self._tracked.discard(eval_id)
        self._release_job(ev)

    def _release_job(self, ev: Evaluation) -> None:
        """The job's in-flight eval is done: promote the newest pending one, the rest
        become cancelable (a newer eval for the job supersedes them)."""
        key = (ev.namespace, ev.job_id)
        if self._job_in_flight.get(key) == ev.id:
            del self._job_in_flight[key]
        self._busy_at = self.clock.now()
        pending = self._pending.pop(key, None)
        if not pending:
            return
        pending.sort(key=lambda e: (e.priority, e.create_index))
        newest = pending.pop()
        if pending and not self.cancelable:
            self._cancelable_at = self._busy_at
        for stale in pending:
            self._tracked.discard(stale.id)
            self.cancelable.append(stale)
        self._make_ready(newest)

    def nack(self, eval_id: str, token: str) -> None:
        """Give the eval back: redelivered after a delay, or failed at the delivery limit."""
        entry = self._take_unacked(eval_id, token)
        ev = entry.ev
        if self._deliveries.get(eval_id, 0) >= self.delivery_limit:
            self._deliveries.pop(eval_id, None)
            self._tracked.discard(eval_id)
            self.failed.append(ev)
            self._release_job(ev)
            return
        delay = self.initial_nack_delay if self._deliveries[eval_id] <= 1 else self.subsequent_nack_delay
        heapq.heappush(self._delayed, (self.clock.now() + delay, next(self._seq), ev))

    # -- time --------------------------------------------------------------------------

    def tick(self) -> None:
        """Nack evals past their deadline; make delayed evals whose time has come ready."""
        now = self.clock.now()
        for eval_id, entry in list(self._unack.items()):
            if entry.deadline <= now:
                self.nack(eval_id, entry.token)
        while self._delayed and self._delayed[0][0] <= now:
            _, _, ev = heapq.heappop(self._delayed)
            self._make_ready(ev)

    def next_deadline(self) -> float | None:
        times = [e.deadline for e in self._unack.values()]
        if self._delayed:
            times.append(self._delayed[0][0])
        return min(times) if times else None

    def take_failed(self) -> list[Evaluation]:
        out, self.failed = self.failed, []
        return out

    def take_cancelable(self) -> list[Evaluation]:
        """The superseded evals to cancel: none while the broker is busy (an eval ready or
        unacked, or one acked less than `cancel_quiet` ago), unless the oldest has waited
        `cancel_hold` (see the module's doc)."""
        if not self.cancelable:
            return []
        now = self.clock.now()
        if self._unack or any(self._ready.values()):
            self._busy_at = now
        if now - self._busy_at < self.cancel_quiet and now - self._cancelable_at < self.cancel_hold:
            return []
        out, self.cancelable = self.cancelable, []
        return out

    def stats(self) -> BrokerStats:
        by_sched = {typ: len(heap) for typ, heap in self._ready.items() if heap}
        return BrokerStats(
            total_ready=sum(by_sched.values()),
            total_unacked=len(self._unack),
            total_pending=sum(len(v) for v in self._pending.values()),
            total_waiting=len(self._delayed),
            total_failed=len(self.failed),
            by_scheduler=by_sched,
        )
