"""The cluster reconciler for service and batch jobs: existing allocs in, buckets out.

Pure: it reads no state and picks no nodes. For each task group it compares the
desired count with the allocs that exist and returns what to place, stop, update in
place or replace, plus follow-up evals for failed allocs that must wait for their
reschedule delay, and a `DesiredUpdates` per group for plan annotations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from yurt.structs import (
    Allocation,
    Deployment,
    DeploymentStatusUpdate,
    DesiredUpdates,
    Evaluation,
    Job,
    Node,
    TaskGroup,
    evolve,
    generate_uuid,
)
from yurt.structs.alloc import (
    ALLOC_CLIENT_COMPLETE,
    ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_LOST,
    ALLOC_CLIENT_PENDING,
    ALLOC_CLIENT_RUNNING,
    ALLOC_CLIENT_UNKNOWN,
    ALLOC_DESIRED_EVICT,
    ALLOC_DESIRED_RUN,
    ALLOC_DESIRED_STOP,
    alloc_name,
)
from yurt.structs.eval import TRIGGER_MAX_DISCONNECT_TIMEOUT, TRIGGER_RETRY_FAILED_ALLOC
from yurt.structs.node import NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN

from .deployments import DeploymentRules, had_running
from .disconnect import (
    ALLOC_RECONNECTED,
    ALLOC_UNKNOWN,
    client_stop_delay,
    disconnect_policy,
    expired,
    lost_replacement_time,
    needs_reconnect,
    pick_reconnected,
    replaces,
    with_client_status,
)
from .reschedule import BATCH_WINDOW, RESCHEDULE_WINDOW, next_reschedule_time
from .update import tasks_updated

ALLOC_NOT_NEEDED = "alloc not needed due to job update"
ALLOC_LOST = "alloc is lost since its node is down"
ALLOC_MIGRATING = "alloc is being migrated"
ALLOC_UPDATING = "alloc is being updated due to job update"
ALLOC_RESCHEDULED = "alloc was rescheduled because it failed"
ALLOC_JOB_STOPPED = "alloc not needed since job was stopped"

UPDATE_IGNORE = "ignore"
UPDATE_INPLACE = "inplace"
UPDATE_DESTRUCTIVE = "destructive"

UpdateFn = Callable[[Allocation, Job, TaskGroup], str]
_LIVE = (ALLOC_CLIENT_RUNNING, ALLOC_CLIENT_PENDING)


@dataclass(slots=True)
class PlacementRequest:
    """A new alloc to place. `previous` is the alloc it replaces (reschedule, lost,
    migrate or destructive update); `reschedule` asks to avoid the previous nodes.
    The scheduler stops `previous` (when `stop_previous` is set) only if a node is found."""

    name: str
    task_group: TaskGroup
    previous: Allocation | None = None
    reschedule: bool = False
    kind: str = "new"  # new, reschedule, lost, migrate, destructive, canary
    stop_previous: str = ""  # stop `previous` with this description if the placement succeeds
    canary: bool = False
    deployment_id: str = ""

    @property
    def index(self) -> int:
        return int(self.name[self.name.rfind("[") + 1 : -1])


@dataclass(slots=True)
class StopRequest:
    alloc: Allocation
    description: str
    client_status: str = ""


@dataclass
class ReconcileResult:
    place: list[PlacementRequest] = field(default_factory=list)
    stop: list[StopRequest] = field(default_factory=list)
    inplace: list[Allocation] = field(default_factory=list)
    attribute_updates: list[Allocation] = field(default_factory=list)
    followup_evals: list[Evaluation] = field(default_factory=list)
    desired_tg_updates: dict[str, DesiredUpdates] = field(default_factory=dict)
    deployment: Deployment | None = None  # the job's current deployment (placements join it)
    deployment_changed: bool = False  # created or changed: the plan carries it
    deployment_updates: list[DeploymentStatusUpdate] = field(default_factory=list)


def default_update_fn(alloc: Allocation, job: Job, tg: TaskGroup) -> str:
    if alloc.job is None:
        return UPDATE_DESTRUCTIVE
    return UPDATE_DESTRUCTIVE if tasks_updated(alloc.job, job, tg.name) else UPDATE_INPLACE


def is_node_tainted(node: Node | None) -> bool:
    """Gone, down, disconnected or draining: its allocs need attention."""
    return node is None or node.status in (NODE_STATUS_DOWN, NODE_STATUS_DISCONNECTED) or node.drain_strategy is not None


@dataclass
class _GroupBuckets:
    keep: list[Allocation] = field(default_factory=list)  # untainted, holding their slot
    lost: list[Allocation] = field(default_factory=list)
    migrate: list[Allocation] = field(default_factory=list)
    reschedule_now: list[Allocation] = field(default_factory=list)
    reschedule_later: list[tuple[Allocation, int]] = field(default_factory=list)
    disconnecting: list[Allocation] = field(default_factory=list)  # node just disconnected: to mark unknown
    unknown: list[Allocation] = field(default_factory=list)  # unknown, waiting for the client or lost_after
    reconnecting: list[Allocation] = field(default_factory=list)  # reported again after being unknown
    lost_waiting: int = 0  # lost allocs whose client may still run them (stop_on_client_after)
    ignored: int = 0


class Reconciler:
    """`Reconciler(...).compute()` -> ReconcileResult."""

    def __init__(
        self,
        job: Job | None,
        allocs: list[Allocation],
        tainted: dict[str, Node | None],
        eval_id: str,
        eval_priority: int,
        now_ns: int,
        update_fn: UpdateFn = default_update_fn,
        deployment: Deployment | None = None,
    ) -> None:
        self.job = job
        self.allocs = allocs
        self.tainted = tainted
        self.eval_id = eval_id
        self.eval_priority = eval_priority
        self.now = now_ns
        self.update_fn = update_fn
        self.batch = job is not None and job.type in ("batch", "sysbatch")
        self.result = ReconcileResult()
        self.rules = DeploymentRules(job, deployment, eval_priority, now_ns)
        self._indexes: dict[int, int] = {}  # id(alloc) -> alloc.index of the group's kept allocs

    def compute(self) -> ReconcileResult:
        by_group: dict[str, list[Allocation]] = {}
        for alloc in self.allocs:
            by_group.setdefault(alloc.task_group, []).append(alloc)
        # A stopped job runs nothing; a periodic or parameterized parent is only a template.
        stopped = self.job is None or self.job.stop or self.job.is_periodic or self.job.is_parameterized
        groups = [] if stopped else list(self.job.task_groups or ())
        wanted = {tg.name for tg in groups}
        for name, allocs in by_group.items():
            if name not in wanted:
                self._stop_all(name, allocs, ALLOC_JOB_STOPPED if stopped else ALLOC_NOT_NEEDED)
        for tg in groups:
            self._reconcile_group(tg, by_group.get(tg.name, []))
        self._finish_deployment()
        return self.result

    def _finish_deployment(self) -> None:
        rules = self.rules
        rules.finish()
        d = rules.deployment
        self.result.deployment = d
        self.result.deployment_changed = rules.changed
        self.result.deployment_updates = rules.updates
        if d is not None:
            for req in self.result.place:
                if req.task_group.name in d.task_groups:
                    req.deployment_id = d.id

    def _updates(self, group: str) -> DesiredUpdates:
        updates = self.result.desired_tg_updates
        du = updates.get(group)
        if du is None:
            du = updates[group] = DesiredUpdates()
        return du

    def _stop(self, alloc: Allocation, desc: str, client_status: str = "") -> None:
        self.result.stop.append(StopRequest(alloc, desc, client_status))

    def _stop_all(self, group: str, allocs: list[Allocation], desc: str) -> None:
        du = self._updates(group)
        for alloc in allocs:
            if alloc.terminal:
                continue
            self._stop(alloc, desc)
            du.stop += 1

    def _classify(self, tg: TaskGroup, allocs: list[Allocation]) -> _GroupBuckets:
        b = _GroupBuckets()
        tainted = self.tainted
        keep = b.keep
        for alloc in allocs:
            # the common case first: live, desired running, on a healthy node, never marked
            # unknown, not migrating; every rule below would keep it
            if (alloc.client_status in _LIVE and alloc.desired_status == ALLOC_DESIRED_RUN and not alloc.alloc_states
                    and alloc.node_id not in tainted and not alloc.desired_transition.migrate):
                keep.append(alloc)
                continue
            if alloc.next_allocation and alloc.terminal:
                continue  # already replaced
            if self.batch and alloc.terminal and alloc.job_version < self.job.version:
                b.ignored += 1
                continue
            if not alloc.terminal and self._classify_disconnect(tg, alloc, b):
                continue
            if alloc.node_id in self.tainted and not alloc.terminal:
                node = self.tainted[alloc.node_id]
                if node is None or node.status in (NODE_STATUS_DOWN, NODE_STATUS_DISCONNECTED):
                    b.lost.append(alloc)
                    continue
            if alloc.desired_transition.migrate and not alloc.terminal:  # drains and `alloc stop`, any node
                b.migrate.append(alloc)
                continue
            if self._waits_for_client_stop(tg, alloc):
                b.lost_waiting += 1
                continue
            state = self._filter_state(alloc)
            if state == "keep":
                b.keep.append(alloc)
            elif state == "ignore":
                b.ignored += 1
            else:
                self._classify_failed(tg, alloc, b)
        return b

    def _classify_disconnect(self, tg: TaskGroup, alloc: Allocation, b: _GroupBuckets) -> bool:
        """Sort a live alloc into the disconnect buckets; False if none applies."""
        node = self.tainted.get(alloc.node_id, False)
        policy = disconnect_policy(tg)
        on_disconnected = node is not False and node is not None and node.status == NODE_STATUS_DISCONNECTED
        if on_disconnected and policy is not None:
            if alloc.client_status != ALLOC_CLIENT_UNKNOWN:
                b.disconnecting.append(alloc)
            elif expired(alloc, policy, self.now):
                b.lost.append(alloc)
            else:
                b.unknown.append(alloc)
            return True
        if node is not False:
            return False  # down, gone, draining: the usual rules
        if alloc.client_status == ALLOC_CLIENT_UNKNOWN:
            b.unknown.append(alloc)  # the node is back; the client has not reported yet
            return True
        if needs_reconnect(alloc) and alloc.client_status in (ALLOC_CLIENT_RUNNING, ALLOC_CLIENT_PENDING):
            b.reconnecting.append(alloc)
            return True
        return False

    def _waits_for_client_stop(self, tg: TaskGroup, alloc: Allocation) -> bool:
        """A lost alloc whose replacement waits for its follow-up eval (the client stops
        it after `stop_on_client_after`); until then it holds its slot."""
        return (alloc.client_status == ALLOC_CLIENT_LOST and bool(alloc.followup_eval_id)
                and alloc.followup_eval_id != self.eval_id and not alloc.next_allocation
                and client_stop_delay(tg) > 0 and self.now < lost_replacement_time(tg, alloc.modify_time))

    def _filter_state(self, alloc: Allocation) -> str:
        """Nomad's `shouldFilter`: keep (holds its slot), ignore, or failed."""
        if self.batch:
            if alloc.desired_status == ALLOC_DESIRED_STOP:
                return "keep" if alloc.client_status == ALLOC_CLIENT_COMPLETE else "ignore"
            if alloc.desired_status == ALLOC_DESIRED_EVICT:
                return "ignore"
            return "failed" if alloc.client_status == ALLOC_CLIENT_FAILED else "keep"
        if alloc.desired_status in (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT):
            return "ignore"
        if alloc.client_status in (ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_LOST):
            return "ignore"
        return "failed" if alloc.client_status == ALLOC_CLIENT_FAILED else "keep"

    def _classify_failed(self, tg: TaskGroup, alloc: Allocation, b: _GroupBuckets) -> None:
        if alloc.desired_transition.force_reschedule:
            b.reschedule_now.append(alloc)
            return
        eligible, when = next_reschedule_time(alloc, tg.reschedule_policy)
        if eligible and (alloc.followup_eval_id == self.eval_id or when - self.now <= RESCHEDULE_WINDOW):
            b.reschedule_now.append(alloc)
            return
        b.keep.append(alloc)
        if eligible and not alloc.followup_eval_id:
            b.reschedule_later.append((alloc, when))

    def _reconcile_group(self, tg: TaskGroup, allocs: list[Allocation]) -> None:
        du = self._updates(tg.name)
        state, existing = self.rules.group_state(tg)
        every, canaries = allocs, []
        if state is not None:
            allocs, canaries, stale = self.rules.split_canaries(allocs)
            for alloc in stale:  # unpromoted canaries of an older deployment
                self._stop(alloc, ALLOC_NOT_NEEDED)
                du.stop += 1
        b = self._classify(tg, allocs)
        du.ignore += b.ignored
        lost = [] if tg.prevent_reschedule_on_lost else self._lost_later(tg, b, du)
        for alloc in b.lost:
            self._stop(alloc, ALLOC_LOST, ALLOC_CLIENT_LOST)
            du.stop += 1
        reconnected = self._reconnect(tg, b, du)
        # by (index, create time), each name parsed once; the position keeps the sort stable
        order = [(a.index, a.create_time, n) for n, a in enumerate(b.keep)]
        order.sort()
        keep = [b.keep[n] for _, _, n in order]
        self._indexes = {id(a): t[0] for a, t in zip(keep, order)}
        held, replace = self._disconnect(tg, b, du)
        # Lost allocs that may not be replaced still count toward the group's count, as do
        # unknown allocs of groups that do not replace them.
        slots = tg.count - len(keep) - (len(b.lost) if tg.prevent_reschedule_on_lost else 0) - held
        slots -= b.lost_waiting
        if slots < 0:
            keep = self._stop_excess(keep, -slots, du)
            slots = 0
        place_start = len(self.result.place)
        self._replace(tg, b, lost, slots, keep, du, replace)
        inplace_before = len(self.result.inplace)
        destructive = self._update_kept(tg, [a for a in keep if a.id not in reconnected], b, du)
        if state is None:
            for alloc in destructive:
                self.result.place.append(PlacementRequest(alloc.name, tg, alloc, False, "destructive", ALLOC_UPDATING))
                du.destructive_update += 1
        else:
            inplace = len(self.result.inplace) - inplace_before
            self._deploy_group(tg, state, existing, every, keep + canaries, canaries, destructive, place_start,
                               inplace, bool(b.reschedule_later), du)
        kept = {a.id for a in keep}
        b.reschedule_later = [(a, when) for a, when in b.reschedule_later if a.id in kept]
        self._reschedule_later(tg, b, du)

    def _stop_excess(self, keep: list[Allocation], excess: int, du: DesiredUpdates) -> list[Allocation]:
        """Stop `excess` allocs: duplicates of a name first, then the highest indexes."""
        seen: set[str] = set()
        dups, rest = [], []
        # of two allocs with one name the newer job version stays (a promoted canary)
        for alloc in sorted(keep, key=lambda a: (a.index, -a.job_version, a.create_time)):
            (dups if alloc.name in seen else rest).append(alloc)
            seen.add(alloc.name)
        order = dups + sorted(rest, key=lambda a: -a.index)
        doomed = order[:excess]
        for alloc in doomed:
            if not alloc.terminal:
                self._stop(alloc, ALLOC_NOT_NEEDED)
                du.stop += 1
        doomed_ids = {a.id for a in doomed}
        return [a for a in keep if a.id not in doomed_ids]

    def _lost_later(self, tg: TaskGroup, b: _GroupBuckets, du: DesiredUpdates) -> list[Allocation]:
        """Lost allocs to replace now. With a client stop delay the replacement waits for
        a follow-up eval (Nomad's delayByStopAfterClientDisconnect) and the slot stays held."""
        if not b.lost or client_stop_delay(tg) <= 0:
            return b.lost
        ev = self._followup_eval(lost_replacement_time(tg, self.now))
        self.result.followup_evals.append(ev)
        b.lost = [evolve(a, followup_eval_id=ev.id) for a in b.lost]
        b.lost_waiting += len(b.lost)
        du.reschedule_later += len(b.lost)
        return []

    def _reconnect(self, tg: TaskGroup, b: _GroupBuckets, du: DesiredUpdates) -> set[str]:
        """Keep the reconnected original or its replacement (per `disconnect.reconcile`)
        and stop the other. Returns the IDs of the originals kept."""
        policy = disconnect_policy(tg)
        if not b.reconnecting or policy is None:
            b.keep.extend(b.reconnecting)
            return set()
        by_previous = {a.previous_allocation: a for a in b.keep if a.previous_allocation}
        kept = set()
        for original in b.reconnecting:
            replacement = by_previous.get(original.id)
            while replacement is not None and replacement.id in by_previous:
                replacement = by_previous[replacement.id]
            winner = pick_reconnected(original, replacement, policy)
            loser = replacement if winner is original else original
            if loser is not None:
                self._stop(loser, ALLOC_RECONNECTED)
                du.stop += 1
                b.keep = [a for a in b.keep if a.id != loser.id]
            if winner is original:
                self.result.attribute_updates.append(with_client_status(original, original.client_status, self.now))
                b.keep.append(original)
                kept.add(original.id)
                du.reconnect += 1
        return kept

    def _disconnect(self, tg: TaskGroup, b: _GroupBuckets, du: DesiredUpdates) -> tuple[int, list[Allocation]]:
        """Mark allocs of a newly disconnected node unknown, with a follow-up eval at
        `lost_after`. Returns (slots they hold, the ones to replace)."""
        policy = disconnect_policy(tg)
        if policy is None:
            return 0, []
        replace = replaces(policy)
        for alloc in b.disconnecting:
            self.result.attribute_updates.append(
                with_client_status(alloc, ALLOC_CLIENT_UNKNOWN, self.now, ALLOC_UNKNOWN))
            du.disconnect += 1
        if b.disconnecting:
            self.result.followup_evals.append(
                self._followup_eval(self.now + policy.lost_after, TRIGGER_MAX_DISCONNECT_TIMEOUT))
        waiting = len(b.disconnecting) + len(b.unknown)
        return (0, list(b.disconnecting)) if replace else (waiting, [])

    def _replace(self, tg, b: _GroupBuckets, lost, slots: int, keep, du: DesiredUpdates,
                 disconnected: list[Allocation] = ()) -> None:
        """Replacements for migrating, lost, disconnected and failed allocs, then new
        allocs, up to `slots`."""
        indexes = self._indexes
        free = _FreeIndexes({indexes[id(a)] for a in keep})
        candidates = [(a, "migrate") for a in b.migrate] + [(a, "lost") for a in lost]
        candidates += [(a, "disconnect") for a in disconnected]
        candidates += [(a, "reschedule") for a in b.reschedule_now]
        for alloc, kind in candidates:
            if slots <= 0:
                if kind not in ("lost", "disconnect"):  # lost ones are already stopped
                    self._stop(alloc, ALLOC_NOT_NEEDED)
                    du.stop += 1
                continue
            slots -= 1
            name = alloc_name(self.job.id, tg.name, free.take(alloc.index))
            stop_desc = {"migrate": ALLOC_MIGRATING, "reschedule": ALLOC_RESCHEDULED}.get(kind, "")
            self.result.place.append(PlacementRequest(name, tg, alloc, kind == "reschedule", kind, stop_desc))
            if kind == "migrate":
                du.migrate += 1
                continue
            du.place += 1
            if kind == "reschedule":
                du.reschedule_now += 1
        for _ in range(slots):
            self.result.place.append(PlacementRequest(alloc_name(self.job.id, tg.name, free.take()), tg))
            du.place += 1

    def _update_kept(self, tg: TaskGroup, keep: list[Allocation], b: _GroupBuckets,
                     du: DesiredUpdates) -> list[Allocation]:
        """In-place updates go to the result; returns the allocs that need a destructive update."""
        destructive = []
        later = {a.id for a, _ in b.reschedule_later}
        for alloc in keep:
            if alloc.id in later or _same_job_version(alloc, self.job):
                du.ignore += 1
                continue
            if alloc.terminal:
                # a failed alloc that may not be rescheduled holds its slot; a new job version
                # replaces it (Nomad's computeUpdates sees it among the untainted allocs)
                if self.batch or alloc.client_status != ALLOC_CLIENT_FAILED or alloc.server_terminal:
                    du.ignore += 1
                else:
                    destructive.append(alloc)
                continue
            decision = self.update_fn(alloc, self.job, tg)
            if decision == UPDATE_IGNORE:
                du.ignore += 1
            elif decision == UPDATE_INPLACE:
                self.result.inplace.append(alloc)
                du.in_place_update += 1
            else:
                destructive.append(alloc)
        return destructive

    def _deploy_group(self, tg: TaskGroup, state, existing: bool, every: list[Allocation], live: list[Allocation],
                      canaries: list[Allocation], destructive: list[Allocation], place_start: int, inplace: int,
                      later: bool, du: DesiredUpdates) -> None:
        """Canaries first, then destructive updates up to the deployment's limit."""
        rules = self.rules
        strategy = tg.update if tg.update is not None and tg.update.max_parallel > 0 else None
        destructive = sorted(destructive, key=lambda a: (a.index, a.create_time))
        wants_canaries = bool(destructive) and strategy is not None and strategy.canary > 0 and not state.promoted
        require_canary = wants_canaries and len(canaries) < strategy.canary
        if require_canary:
            state = evolve(state, desired_canaries=strategy.canary)
        group_places = self.result.place[place_start:]
        pending = bool(destructive) or inplace > 0 or bool(group_places) or require_canary or later
        ready = rules.place_ready(state)
        if not ready:  # only replacements of failed and lost allocs go ahead
            waiting = [r for r in group_places if r.kind == "new"]
            self.result.place[place_start:] = [r for r in group_places if r.kind != "new"]
            du.place -= len(waiting)
            du.ignore += len(waiting)
            group_places = self.result.place[place_start:]
        if require_canary and not rules.paused and not rules.failed:
            used = {a.name for a in canaries}
            names = [a.name for a in destructive if a.name not in used]
            for name in names[: strategy.canary - len(canaries)]:
                self.result.place.append(PlacementRequest(name, tg, None, False, "canary", canary=True))
                du.canary += 1
        limit = rules.limit(tg, state, live, len(destructive)) if strategy is not None else len(destructive)
        limit -= min(len(group_places), limit)
        n = min(len(destructive), limit) if ready else 0
        for alloc in destructive[:n]:
            self.result.place.append(PlacementRequest(alloc.name, tg, alloc, False, "destructive", ALLOC_UPDATING))
            du.destructive_update += 1
        du.ignore += len(destructive) - n
        rules.attach(tg, state, existing, had_running(self.job, every), bool(destructive) or inplace > 0)
        rules.group_done(tg, pending)

    def _reschedule_later(self, tg: TaskGroup, b: _GroupBuckets, du: DesiredUpdates) -> None:
        """One follow-up eval per batch of failures within BATCH_WINDOW of each other."""
        pending = sorted(b.reschedule_later, key=lambda t: t[1])
        batch_start = None
        ev = None
        for alloc, when in pending:
            if ev is None or when - batch_start > BATCH_WINDOW:
                batch_start = when
                ev = self._followup_eval(when)
                self.result.followup_evals.append(ev)
            self.result.attribute_updates.append(evolve(alloc, followup_eval_id=ev.id))
            du.reschedule_later += 1

    def _followup_eval(self, wait_until: int, trigger: str = TRIGGER_RETRY_FAILED_ALLOC) -> Evaluation:
        job = self.job
        return Evaluation(
            id=generate_uuid(),
            namespace=job.namespace,
            priority=self.eval_priority,
            type=job.type,
            triggered_by=trigger,
            job_id=job.id,
            job_modify_index=job.job_modify_index,
            status="pending",
            status_description=("created for delayed disconnect timeout" if trigger == TRIGGER_MAX_DISCONNECT_TIMEOUT
                                else "created for delayed rescheduling"),
            wait_until=wait_until,
            previous_eval=self.eval_id,
            create_time=self.now,
            modify_time=self.now,
        )


class _FreeIndexes:
    """Hands out the lowest alloc indexes not in `used` (Nomad reuses freed indexes)."""

    def __init__(self, used: set[int]) -> None:
        self.used = used
        self.cursor = 0

    def take(self, preferred: int | None = None) -> int:
        if preferred is not None and preferred not in self.used:
            self.used.add(preferred)
            return preferred
        while self.cursor in self.used:
            self.cursor += 1
        self.used.add(self.cursor)
        return self.cursor


def _same_job_version(alloc: Allocation, job: Job) -> bool:
    if alloc.job is not None:
        return alloc.job.job_modify_index == job.job_modify_index and alloc.job.version == job.version
    return alloc.job_version == job.version
