"""The server: state store plus the leader loops (broker, workers, plan applier,
blocked evals, heartbeats). A single server is always the leader; the loops start and
stop in one place (`establish_leadership` / `revoke_leadership`)."""

import asyncio
import logging
import time
from collections import deque

from yurt.structs import (
    CLIENT_TERMINAL_STATUSES,
    EVAL_STATUS_BLOCKED,
    EVAL_STATUS_CANCELED,
    EVAL_STATUS_FAILED,
    EVAL_STATUS_PENDING,
    NODE_ELIGIBLE,
    NODE_STATUS_DISCONNECTED,
    NODE_STATUS_READY,
    TRIGGER_FAILED_FOLLOW_UP,
    Evaluation,
    SchedulerConfiguration,
    evolve,
    generate_uuid,
)

from .blocked import BlockedEvals
from .broker import EvalBroker
from .clock import NS_PER_SECOND, Clock, SystemClock, now_ns
from .config import ServerConfig
from .deployment_watcher import DeploymentWatcher
from .drainer import NodeDrainer
from .endpoints.allocs import AllocUpdateBatcher
from .events import EventBuffer, events_for
from .gc import GCThresholds, collect_garbage
from .heartbeat import HeartbeatTimers, node_missed_heartbeat
from .periodic import PeriodicDispatch
from .plan_apply import PlanApplier
from .worker import SCHEDULER_TYPES, Worker

log = logging.getLogger(__name__)

TIMER_INTERVAL = 0.1
MISSED_HEARTBEAT_BUDGET_S = 0.05  # loop time one timer pass may spend marking nodes (the rest: next turn)
CANCEL_CHUNK = 4096  # superseded evals canceled per command (Nomad: 728 per raft entry, see _write_eval_updates)


class Server:
    def __init__(self, config: ServerConfig | None = None, clock: Clock | None = None):
        self.config = (config or ServerConfig()).normalize()
        self.clock = clock or SystemClock()
        self.state = None
        self.leader = False
        self.leadership = None  # EtcdLeadership with state_backend = "etcd"
        self.broker = EvalBroker(
            self.clock,
            nack_timeout=self.config.eval_nack_timeout,
            delivery_limit=self.config.eval_delivery_limit,
            initial_nack_delay=self.config.eval_initial_nack_delay,
            subsequent_nack_delay=self.config.eval_subsequent_nack_delay,
        )
        self.blocked = BlockedEvals()
        self.heartbeats = HeartbeatTimers(
            self.clock,
            min_ttl=self.config.min_heartbeat_ttl,
            max_per_second=self.config.max_heartbeats_per_second,
            grace=self.config.heartbeat_grace,
        )
        self.applier: PlanApplier | None = None
        self.alloc_updates = AllocUpdateBatcher(self, self.config.alloc_update_batch_window, self.now_ns)
        self.workers: list[Worker] = []
        self._timer_task: asyncio.Task | None = None
        self._evals_to_cancel: list[Evaluation] = []
        self._stale: list[Evaluation] = []  # superseded evals not yet canceled in the state
        self._missed: deque[str] = deque()  # nodes past their heartbeat deadline, not yet marked
        self._cancel_next: asyncio.Handle | None = None
        self.draining_nodes: set[str] = set()
        self.drainer = NodeDrainer()
        self.deployment_watcher = DeploymentWatcher()
        self.events = EventBuffer()
        self.periodic = PeriodicDispatch(self)
        self._last_gc = self.clock.now()
        self.start_time = self.clock.now()

    def now_ns(self) -> int:
        return now_ns(self.clock)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        try:
            from yurt.state import StateStore
        except ImportError:  # the package may not re-export it yet
            from yurt.state.store import StateStore

        if self.config.state_backend == "etcd":  # HA: leadership comes and goes with an etcd lease
            from .leadership import EtcdLeadership

            self.leadership = self.leadership or EtcdLeadership(self)
            if self.state is None:
                self.state = await asyncio.to_thread(self.leadership.open_state)
                self.state.add_listener(self._on_apply)
            await self.leadership.start()
            return
        if self.state is None:
            self.state = StateStore.open(self.config.data_dir)
            self.state.add_listener(self._on_apply)
        await self.establish_leadership()

    async def stop(self) -> None:
        if self.leadership is not None:
            await self.leadership.stop()
        await self.revoke_leadership()
        self.alloc_updates.close()
        if self.state is not None:
            self.state.close()
            self.state = None

    async def establish_leadership(self) -> None:
        if self.leader:
            return
        self.leader = True
        self.broker.set_enabled(True)
        self.blocked.set_enabled(True)
        self.applier = PlanApplier(self.state, self.now_ns, self.broker.outstanding)
        self.applier.start()
        self._init_scheduler_config()
        self.restore()
        self.periodic.set_enabled(True)
        self.periodic.restore()
        types = [t for t in self.config.enabled_schedulers if t in SCHEDULER_TYPES] or SCHEDULER_TYPES
        self.workers = [
            Worker(f"worker-{i}", self.state, self.broker, self.applier, self.now_ns, types)
            for i in range(max(0, self.config.num_schedulers))
        ]
        for w in self.workers:
            w.start()
        self._timer_task = asyncio.create_task(self._timer_loop(), name="leader-timers")

    async def revoke_leadership(self) -> None:
        if not self.leader:
            return
        self.leader = False
        if self._timer_task is not None:
            self._timer_task.cancel()
            try:
                await self._timer_task
            except asyncio.CancelledError:
                pass
            self._timer_task = None
        self.periodic.set_enabled(False)
        self.broker.set_enabled(False)
        for w in self.workers:
            await w.stop()
        self.workers = []
        if self.applier is not None:
            await self.applier.stop()
            self.applier = None
        self.blocked.set_enabled(False)
        self._stale = []  # still pending in the state: the next leader's broker sorts them out
        if self._cancel_next is not None:
            self._cancel_next.cancel()
            self._cancel_next = None
        self.heartbeats.clear()
        self._missed.clear()
        self.draining_nodes.clear()

    def _init_scheduler_config(self) -> None:
        """As Nomad's leader does: store the default scheduler configuration once. This
        also makes the first index 1, so a blocking query at index 1 sees the next write."""
        from yurt.state.commands import SchedulerConfigSet

        if self.state.snapshot().table_index("scheduler_config") == 0:
            self.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))

    def restore(self) -> None:
        """After start or failover: re-enqueue pending evals, rebuild blocked evals and
        give every ready node a fresh (failover) heartbeat TTL."""
        snapshot = self.state.snapshot()
        for ev in sorted(snapshot.evals(None), key=lambda e: e.create_index):
            self._track_eval(ev)
        ttl = max(self.config.failover_heartbeat_ttl, self.config.min_heartbeat_ttl)
        for node in snapshot.nodes():
            if node.status in (NODE_STATUS_READY, NODE_STATUS_DISCONNECTED):
                self.heartbeats.reset(node.id, ttl=ttl)
            if node.drain_strategy is not None:
                self.draining_nodes.add(node.id)

    # -- reacting to state changes ----------------------------------------------------

    def _track_eval(self, ev: Evaluation) -> None:
        if ev.status == EVAL_STATUS_PENDING:
            self.broker.enqueue(ev)
        elif ev.status == EVAL_STATUS_BLOCKED:
            result = self.blocked.block(ev)
            for released in result.unblock_now:
                self.broker.enqueue(released)
            self._evals_to_cancel.extend(result.duplicates)

    def _on_apply(self, index: int, command) -> None:
        """Listener: new evals go to the broker or the blocked set; freed capacity unblocks."""
        if self.events.subscribers:
            self.events.publish(events_for(self.state.snapshot(), index, command))
        if not self.leader:
            return
        evals = list(getattr(command, "evals", None) or ())
        single = getattr(command, "eval", None)
        if single is not None:
            evals.append(single)
        if evals:
            snapshot = None
            for ev in evals:
                if ev.status not in (EVAL_STATUS_PENDING, EVAL_STATUS_BLOCKED):  # untracked
                    continue
                if ev.create_index != index or ev.modify_index != index:
                    # as stored (its indexes); a new eval whose writer stamped it with this
                    # command's index (a register storm's) is stored as it is
                    snapshot = snapshot or self.state.snapshot()
                    ev = snapshot.eval_by_id(ev.id) or ev
                self._track_eval(ev)
        if type(command).__name__ == "NodeUpdateDrain" and command.drain_strategy is not None:
            self.draining_nodes.add(command.node_id)
        if self._frees_capacity(command):
            for ev in self.blocked.unblock(index):
                self.broker.enqueue(ev)

    @staticmethod
    def _frees_capacity(command) -> bool:
        kind = type(command).__name__
        if kind == "NodeRegister":
            return command.node.status == NODE_STATUS_READY
        if kind == "NodeUpdateStatus":
            return command.status == NODE_STATUS_READY
        if kind == "NodeUpdateEligibility":
            return command.eligibility == NODE_ELIGIBLE
        if kind == "AllocClientUpdate":
            return any(a.client_status in CLIENT_TERMINAL_STATUSES for a in command.allocs)
        if kind == "PlanApply":
            return bool(getattr(command, "node_update", None) or getattr(command, "node_preemptions", None))
        return False

    # -- timers ------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            try:
                self.run_timers(MISSED_HEARTBEAT_BUDGET_S)
            except Exception:
                log.exception("leader timers failed")
            # marks left over from a pass over its budget go on at the next loop turn
            await asyncio.sleep(0 if self._missed else TIMER_INTERVAL)

    def run_timers(self, missed_budget_s: float | None = None) -> None:
        """One pass of the leader's time-driven work (tests call it with a fake clock).
        `missed_budget_s`: how long this pass may spend marking nodes that missed their
        heartbeat (None: all of them now)."""
        self.broker.tick()
        self._mark_missed(missed_budget_s)
        self.drainer.tick(self)
        self.deployment_watcher.tick(self)
        self.periodic.tick()
        if self.clock.now() - self._last_gc >= self.config.gc_interval:
            self._last_gc = self.clock.now()
            collect_garbage(self, self.gc_thresholds())
        self._stale.extend(self.broker.take_cancelable())
        self._stale.extend(self._evals_to_cancel)
        self._evals_to_cancel = []
        self._write_eval_updates(self._failed_eval_updates())

    def _mark_missed(self, budget_s: float | None) -> None:
        """Mark the nodes past their heartbeat deadline, for at most `budget_s` of loop time:
        when a whole fleet falls silent (5,000 nodes, each with evals for every job it runs)
        one pass over all would hold the event loop for a minute, signals and requests
        included; Nomad invalidates each node on its own timer. A node that heartbeated
        again while it waited here is tracked again and is left alone."""
        self._missed.extend(self.heartbeats.expired())
        started = time.monotonic()
        while self._missed:
            node_id = self._missed.popleft()
            if self.heartbeats.tracking(node_id):
                continue
            status = node_missed_heartbeat(self, node_id)
            log.warning("node %s missed its heartbeat: marked %s", node_id, status)
            if budget_s is not None and time.monotonic() - started >= budget_s:
                return

    def _write_eval_updates(self, updates: list[Evaluation]) -> None:
        """Store `updates` with the next `CANCEL_CHUNK` stale evals canceled, in one command;
        the other stale evals go in the next loop turns, a chunk per turn, as Nomad's reaper
        writes them (a storm cancels ~50,000: one command would hold the loop ~1 s)."""
        self._write_cancel_chunk(updates)
        if not self._stale or self._cancel_next is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tests): the rest now
            while self._stale:
                self._write_cancel_chunk([])
            return
        self._cancel_next = loop.call_soon(self._next_cancel_chunk)

    def _write_cancel_chunk(self, updates: list[Evaluation]) -> None:
        from yurt.state.commands import EvalUpsert

        chunk, self._stale = self._stale[:CANCEL_CHUNK], self._stale[CANCEL_CHUNK:]
        updates = updates + self._canceled(chunk)
        if updates:
            self.state.apply(EvalUpsert(evals=updates))

    def _next_cancel_chunk(self) -> None:
        self._cancel_next = None
        if not self.leader or self.state is None:
            self._stale = []
            return
        try:
            self._write_eval_updates([])
        except Exception:
            log.exception("canceling superseded evals failed")

    def gc_thresholds(self) -> GCThresholds:
        cfg = self.config
        return GCThresholds(cfg.eval_gc_threshold, cfg.batch_eval_gc_threshold, cfg.job_gc_threshold,
                            cfg.node_gc_threshold)

    def _failed_eval_updates(self) -> list[Evaluation]:
        """Evals over the delivery limit: failed, with a delayed follow-up eval."""
        out = []
        now = self.now_ns()
        for ev in self.broker.take_failed():
            follow = evolve(
                ev,
                id=generate_uuid(),
                status=EVAL_STATUS_PENDING,
                status_description="",
                triggered_by=TRIGGER_FAILED_FOLLOW_UP,
                previous_eval=ev.id,
                wait_until=now + int(self.config.failed_follow_up_delay * NS_PER_SECOND),
                create_time=now,
                modify_time=now,
                create_index=0,
                modify_index=0,
            )
            limit = self.config.eval_delivery_limit
            out.append(evolve(ev, status=EVAL_STATUS_FAILED, next_eval=follow.id, modify_time=now,
                              status_description=f"evaluation reached delivery limit ({limit})"))
            out.append(follow)
        return out

    def _canceled(self, stale: list[Evaluation]) -> list[Evaluation]:
        """The stale evals canceled, each with the index the next command lands at (the
        state then stores them as they are)."""
        now, index = self.now_ns(), self.state.latest_index + 1
        return [
            evolve(ev, status=EVAL_STATUS_CANCELED, modify_time=now, modify_index=index,
                   status_description="canceled after more recent eval was processed")
            for ev in stale
        ]
