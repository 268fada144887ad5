"""The plan applier: the only writer of allocations.

Plans from the workers queue up (by priority); the applier re-checks every node the plan
touches against the newest state (`allocs_fit`), commits the nodes that still fit in one
`PlanApply` command, and tells the worker to refresh (`refresh_index`) when it rejected
any. `all_at_once` plans commit entirely or not at all. Evictions (`node_preemptions`) are
counted as freed when re-checking fit and committed with a `preemption` eval for each job
that loses allocs.
"""

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

import msgspec

from yurt.scheduler.usage import (
    _count,
    _shared_held_by,
    advance_base,
    cached_base,
    node_base,
    rekey_base,
    store_base,
)
from yurt.state import commands as c
from yurt.state.fsm_allocs import absent_at
from yurt.structs import (
    ALLOC_CLIENT_UNKNOWN,
    ALLOC_DESIRED_EVICT,
    ALLOC_DESIRED_STOP,
    NODE_STATUS_DISCONNECTED,
    NODE_STATUS_READY,
    Allocation,
    Evaluation,
    Plan,
    PlanResult,
    generate_uuid,
)
from yurt.structs.alloc import CLIENT_TERMINAL_STATUSES
from yurt.structs.eval import EVAL_STATUS_PENDING, TRIGGER_PREEMPTION
from yurt.structs.resources import (
    DIM_CORES,
    DIM_CPU,
    DIM_DISK,
    DIM_MEMORY,
    DIM_PORT_COLLISION,
    DIM_RESERVED_PORT,
    allocs_fit,
    node_reserved_ports,
)

log = logging.getLogger(__name__)

_SERVER_TERMINAL = (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)  # `Allocation.terminal`, inline


@dataclass(slots=True)
class NodeVerdict:
    node_id: str
    fits: bool
    reason: str = ""


def _proposed_allocs(snapshot, plan: Plan, node_id: str) -> list[Allocation]:
    """The node's non-terminal allocs once the plan is applied."""
    removed = {a.id for a in plan.node_update.get(node_id, ())}
    removed |= {a.id for a in plan.node_preemptions.get(node_id, ())}
    placed = plan.node_allocation.get(node_id, [])
    removed |= {a.id for a in placed}
    existing = [a for a in snapshot.allocs_by_node(node_id) if not a.terminal and a.id not in removed]
    return existing + list(placed)


class _Placed:
    """What a node's plan adds when it only places new allocs: the node's usage once the
    plan is committed, counted while checking the fit (`plan_fits_node`), so the applier
    can carry the scheduler's cached usage over without counting the allocs again."""

    __slots__ = ("node", "base", "cpu", "mem", "disk", "cores", "ports", "allocs")

    def __init__(self, node, base, cpu: int, mem: int, disk: int, cores: frozenset, ports: frozenset, allocs) -> None:
        self.node, self.base, self.allocs = node, base, allocs
        self.cpu, self.mem, self.disk, self.cores, self.ports = cpu, mem, disk, cores, ports


def plan_fits_node(snapshot, plan: Plan, node, placed_out: dict | None = None) -> tuple[bool, str]:
    """`allocs_fit(node, _proposed_allocs(...))` without re-adding every alloc of the node:
    the node's existing usage (the scheduler's per-node cache, keyed on the state's
    per-node alloc index) plus the plan's delta. Same answer; the dimension named may
    differ when several are exceeded. When the node fits and its plan only places new,
    non-terminal allocs with allocated resources, `placed_out[node.id]` gets the usage
    after the plan (`_Placed`)."""
    node_id = node.id
    index_of = getattr(snapshot, "node_allocs_index", None)
    version = index_of(node_id) if index_of is not None else None
    base = cached_base(node, version) if version is not None else None
    if base is None:
        base = node_base(node, snapshot.allocs_by_node(node_id), version)
    if base.conflict or getattr(node.node_resources, "devices", None):
        # clashing allocs, or devices (allocs_fit checks their instances): the full check
        return allocs_fit(node, _proposed_allocs(snapshot, plan, node_id))
    cpu, mem, disk = base.free_cpu, base.free_mem, base.free_disk
    cores, ports = base.free_cores, base.ports  # frozensets, copied when they change
    placed = plan.node_allocation.get(node_id, ())
    stops, evictions = plan.node_update.get(node_id), plan.node_preemptions.get(node_id)
    # `unchanged`: no write since the scheduler's snapshot may have changed what the node's
    # allocs hold (`node_allocs_index`: every alloc put on, moved to or taken off the node
    # moves it). A new placement (no create index: a fresh random ID the scheduler drew) is
    # then stored nowhere: on this node it would have moved the index past the snapshot, and
    # no other node gets the ID. Its lookup is skipped (the fit is still counted in full).
    snapshot_index = plan.snapshot_index
    unchanged = snapshot_index > 0 and version is not None and version <= snapshot_index
    if len(placed) == 1 and not stops and not evictions:  # one new alloc: most nodes of a big plan
        alloc = placed[0]
        removed = () if unchanged and not alloc.create_index else (alloc.id,)
        unique = True
    else:
        removed = {a.id for a in placed}
        unique = len(removed) == len(placed)
        if unchanged:
            removed = {a.id for a in placed if a.create_index}
        if stops or evictions:
            removed.update(a.id for a in stops or ())
            removed.update(a.id for a in evictions or ())
    lookup = getattr(snapshot, "alloc_by_id", None)
    if lookup is None and removed:
        lookup = {a.id: a for a in snapshot.allocs_by_node(node_id)}.get
    # (a plan listing one alloc twice is not counted that way: the commit stores it once)
    only_new = placed_out is not None and not stops and not evictions and unique
    for alloc_id in removed:
        current = lookup(alloc_id)
        if current is None:
            continue
        only_new = False
        if current.node_id != node_id or current.terminal:
            continue
        _, c_cpu, c_mem, c_disk, c_cores, c_ports = _shared_held_by(current)
        cpu, mem, disk = cpu + c_cpu, mem + c_mem, disk + c_disk
        if c_cores:
            cores = cores | c_cores
        if c_ports:
            ports = ports - c_ports
    reserved = None
    for alloc in placed:
        if alloc.desired_status in _SERVER_TERMINAL or alloc.client_status in CLIENT_TERMINAL_STATUSES:
            only_new = False  # (terminal: it holds nothing)
            continue
        if alloc.allocated_resources is None or alloc.node_id != node_id:
            only_new = False
        _, a_cpu, a_mem, a_disk, a_cores, held = _shared_held_by(alloc)
        if a_cores:
            if not a_cores <= cores:
                return False, DIM_CORES
            cores = cores - a_cores
        cpu, mem, disk = cpu - a_cpu, mem - a_mem, disk - a_disk
        if held:
            if reserved is None:
                reserved = node_reserved_ports(node)
            if not held.isdisjoint(reserved):
                return False, DIM_RESERVED_PORT
            if not held.isdisjoint(ports):
                return False, DIM_PORT_COLLISION
            ports = ports | held
    if cpu < 0:
        return False, DIM_CPU
    if mem < 0:
        return False, DIM_MEMORY
    if disk < 0:
        return False, DIM_DISK
    if only_new and placed and version is not None:
        placed_out[node_id] = _Placed(node, base, cpu, mem, disk, cores, ports, placed)
    return True, ""


# Commands that change no alloc's hold on its node (the per-node usage index does not move
# for them; the node ones may replace node objects). A command of a kind in neither this
# set nor `_alloc_ids_by_node` stops the carrying over for its commit: its nodes recount.
_NO_USAGE_CHANGE = frozenset((
    c.JobRegister, c.JobDeregister, c.JobStabilitySet, c.EvalUpsert, c.SchedulerConfigSet, c.PeriodicLaunchUpsert,
    c.ScalingEventRegister, c.AllocDesiredTransition,  # desired transitions only
    c.DeploymentStatusSet, c.DeploymentPromote, c.DeploymentAllocHealth, c.DeploymentDelete,  # deployment status only
    c.NodeRegister, c.NodeUpdateStatus, c.NodeUpdateEligibility, c.NodeUpdateDrain, c.NodeDeregister,
))


def _alloc_ids_by_node(before, command, skip: dict) -> dict[str, set[str]] | None:
    """node id -> IDs of the allocs on it (in `before`, or placed there) whose hold
    `command` may change; None for a command of an unknown kind. The new allocs placed on
    a node of `skip` (already carried over) are left out."""
    kind = type(command)
    out: dict[str, set[str]] = {}
    lookup = before.alloc_by_id
    if kind is c.PlanApply:
        ids = [a.id for table in (command.node_update, command.node_preemptions) for allocs in table.values()
               for a in allocs]
        for node_id, allocs in command.node_allocation.items():
            if node_id in skip:  # new allocs only, all on this node (the fit check looked them up)
                continue
            for alloc in allocs:
                out.setdefault(alloc.node_id, set()).add(alloc.id)
                ids.append(alloc.id)  # and the node it was on, if it moved
    elif kind is c.AllocClientUpdate:
        ids = [u.id for u in command.allocs]
    elif kind is c.EvalDelete:
        ids = command.alloc_ids
    elif kind in _NO_USAGE_CHANGE:
        return out
    else:
        return None
    for alloc_id in ids:
        old = lookup(alloc_id)
        if old is not None:
            out.setdefault(old.node_id, set()).add(alloc_id)
    return out


def _rewritten_node_ids(command) -> tuple[str, ...]:
    """Nodes whose object `command` replaces without changing their allocs."""
    if type(command) is c.NodeRegister:
        return (command.node.id,)
    node_id = getattr(command, "node_id", None)
    return (node_id,) if node_id else ()


def carry_usage(before, after, commands: list, placed: dict | None = None, verified: bool = False) -> None:
    """Carry the scheduler's cached usage of each node `commands` (committed one after the
    other, from `before` to `after`) changed over to `after` (old usage + the committed
    delta, or the same usage under a replaced node object), so the next evaluation and
    plan check need not recount the node's allocs. `placed`: for a single `PlanApply`
    checked on `before`, the nodes whose usage after the plan `plan_fits_node` counted.
    `verified`: `commands` is exactly that `PlanApply` (its new allocs moved each such
    node's usage index to `after.index`, and a plan replaces no node object), so that
    need not be checked node by node."""
    index_of = getattr(after, "node_allocs_index", None)
    if index_of is None or after.index - before.index != len(commands):
        return  # not every write between the two is known
    if placed and not verified:
        placed = {node_id: counted for node_id, counted in placed.items()
                  if index_of(node_id) == after.index and after.node_by_id(node_id) is counted.node}
    counted_by_node = placed or {}
    by_node: dict[str, set[str]] = {}
    rewritten: set[str] = set()
    # client updates change what an alloc holds only when it goes between terminal and not;
    # when no alloc did (the per-job live counts are the same object), theirs need no lookup.
    # (Opposite changes in one job cancel out there: those nodes are then not carried, and
    # recount, as for any commit not carried.)
    token = getattr(after, "liveness_token", None)
    same_liveness = token is not None and token() is before.liveness_token()
    for command in commands:
        if same_liveness and type(command) is c.AllocClientUpdate:
            _count("carry:client_update_skipped")
            continue
        found = _alloc_ids_by_node(before, command, counted_by_node)
        if found is None:
            _count("carry:unknown_command")
            return
        for node_id, ids in found.items():
            by_node.setdefault(node_id, set()).update(ids)
        rewritten.update(_rewritten_node_ids(command))
    for node_id, counted in counted_by_node.items():
        if node_id in by_node:  # the plan changed other allocs there too: count them all
            by_node[node_id].update(a.id for a in counted.allocs)
        else:
            _carry_placed(counted, after.index)
    _count("carry:placed", len(counted_by_node))
    old_index_of = before.node_allocs_index
    for node_id in by_node.keys() | rewritten if rewritten else by_node:
        old_version, new_version = old_index_of(node_id), index_of(node_id)
        if old_version == new_version and node_id not in rewritten:
            continue  # what its allocs hold did not change, nor did the node object (status reports)
        node, old_node = after.node_by_id(node_id), before.node_by_id(node_id)
        if node is None or old_node is None:
            continue
        if old_version == new_version:  # what its allocs hold did not change
            if node is not old_node:
                rekey_base(old_node, node, new_version)
            continue
        ids = by_node.get(node_id)
        if ids is None:
            _count("carry:node_skipped")  # its allocs changed, but not by these commands' allocs
            continue
        changes = [(before.alloc_by_id(i), after.alloc_by_id(i)) for i in ids]
        advance_base(node, old_version, new_version, changes, old_node)


class UsageCarrier:
    """A store listener that carries the scheduler's cached node usage over across every
    commit (`carry_usage`): plans, client status updates, garbage collection, node status
    writes. It keeps the snapshot of the state before the commit it will see next, so it
    knows what each commit changed; commits that are not seen one after the other (a write
    batch seen midway, or concurrent writers) are skipped: their nodes recount."""

    def __init__(self, store) -> None:
        self._store = weakref.ref(store)
        self._last = store.snapshot()
        self._pending: list[tuple[int, object]] = []
        self._expected: tuple | None = None
        self._lock = threading.Lock()
        store.add_listener(self.on_commit)

    def expect(self, command, checked, placed: dict) -> None:
        """The applier is about to commit `command`, checked on the snapshot `checked`;
        `placed` is what its fit check counted (`plan_fits_node`)."""
        self._expected = (command, checked.index, placed)

    def on_commit(self, index: int, command) -> None:
        store = self._store()
        if store is None:
            return
        with self._lock:
            self._pending.append((index, command))
            after = store.snapshot()
            if after.index != index:
                return  # more commands of this write are still to be seen
            pending, self._pending = sorted(self._pending, key=_INDEX), []
            before, self._last = self._last, after
            expected, self._expected = self._expected, None
            if [i for i, _ in pending] != list(range(before.index + 1, index + 1)):
                _count("carry:skipped_gap")
                return
            commands = [cmd for _, cmd in pending]
            placed = None
            if expected is not None and len(commands) == 1 and expected[0] is command and expected[1] == before.index:
                placed = expected[2]
            carry_usage(before, after, commands, placed, verified=placed is not None and type(command) is c.PlanApply)


_INDEX = itemgetter(0)
_CARRIERS: "weakref.WeakKeyDictionary[object, UsageCarrier]" = weakref.WeakKeyDictionary()
_CARRIERS_LOCK = threading.Lock()


def usage_carrier(store) -> UsageCarrier | None:
    """The store's carrier, installed on first use; None for a state without listeners or
    a per-node usage index (then nothing is carried over and the scheduler recounts)."""
    if not hasattr(store, "add_listener") or not hasattr(store.snapshot(), "node_allocs_index"):
        return None
    carrier = _CARRIERS.get(store)
    if carrier is None:
        with _CARRIERS_LOCK:
            carrier = _CARRIERS.get(store)
            if carrier is None:
                carrier = _CARRIERS[store] = UsageCarrier(store)
    return carrier


def _carry_placed(counted: _Placed, index: int) -> None:
    """`advance_base` for a node that got only new allocs, from the sums the fit check made."""
    base = counted.base
    new = base.carried(counted.node, index, counted.cpu, counted.mem, counted.disk,
                       frozenset(counted.cores), frozenset(counted.ports),  # no copy when frozen
                       base.jobs.added(counted.allocs))
    store_base(counted.node.id, new)



def _still_running(snapshot, evicted: list[Allocation]) -> list[Allocation]:
    """Evictions of allocs that stopped meanwhile are dropped (they free nothing more)."""
    out = []
    for alloc in evicted:
        current = snapshot.alloc_by_id(alloc.id)
        if current is not None and not current.terminal:
            out.append(alloc)
    return out


def evaluate_node(snapshot, plan: Plan, node_id: str, placed_out: dict | None = None) -> NodeVerdict:
    if not plan.node_allocation.get(node_id):
        return NodeVerdict(node_id, True)  # only stops and evictions: always fine
    node = snapshot.node_by_id(node_id)
    if node is None:
        return NodeVerdict(node_id, False, "node does not exist")
    if node.status == NODE_STATUS_DISCONNECTED:  # only marking its allocs unknown is allowed
        valid = all(a.client_status == ALLOC_CLIENT_UNKNOWN for a in plan.node_allocation[node_id])
        return NodeVerdict(node_id, valid, "" if valid else "node is disconnected and contains invalid updates")
    if node.status != NODE_STATUS_READY:
        return NodeVerdict(node_id, False, "node is not ready for placements")
    fits, dimension = plan_fits_node(snapshot, plan, node, placed_out)
    return NodeVerdict(node_id, fits, "" if fits else dimension)


def _without_gone_updates(snapshot, plan: Plan) -> Plan | None:
    """`plan` without its updates of allocs the state no longer holds (deleted by the
    garbage collector after the scheduler's snapshot: a new placement has no create index,
    an update is of a stored alloc); None when there are none. Stops and evictions of such
    allocs change nothing at commit (`fsm_allocs._stopped`)."""
    lookup = getattr(snapshot, "alloc_by_id", None)
    kept: dict[str, list[Allocation]] | None = None
    for node_id, allocs in plan.node_allocation.items():
        for a in allocs:
            if a.create_index:
                break
        else:
            continue  # only new placements (the usual case: no generator per node)
        find = lookup or {a.id: a for a in snapshot.allocs_by_node(node_id)}.get
        live = [a for a in allocs if not a.create_index or find(a.id) is not None]
        if len(live) == len(allocs):
            continue
        if kept is None:
            kept = dict(plan.node_allocation)
        if live:
            kept[node_id] = live
        else:
            del kept[node_id]
    if kept is None:
        return None
    return msgspec.structs.replace(plan, node_allocation=kept)


def evaluate_plan(snapshot, plan: Plan, placed_out: dict | None = None) -> tuple[PlanResult, list[NodeVerdict]]:
    """What of `plan` can be committed on `snapshot` (no side effects but `placed_out`:
    see `plan_fits_node`; it names only nodes whose placements the result keeps). Updates
    of allocs that are gone are left out, and the result then asks the scheduler to
    refresh (`refresh_index`), like a rejected node does."""
    pruned = _without_gone_updates(snapshot, plan)
    if pruned is not None:
        result, verdicts = evaluate_plan(snapshot, pruned, placed_out)
        result.refresh_index = snapshot.index
        return result, verdicts
    stops, placements, evictions = plan.node_update, plan.node_allocation, plan.node_preemptions
    if stops or evictions:
        node_ids = sorted(set(stops) | set(placements) | set(evictions))
    else:
        node_ids = sorted(placements)
    verdicts = []
    rejected = []
    result = PlanResult()
    kept_stops, kept_placements, kept_evictions = result.node_update, result.node_allocation, result.node_preemptions
    for node_id in node_ids:
        verdict = evaluate_node(snapshot, plan, node_id, placed_out)
        verdicts.append(verdict)
        if not verdict.fits:
            rejected.append(node_id)
            continue
        # (what is kept is dropped again below when a rejection fails an all_at_once plan)
        allocs = stops.get(node_id)
        if allocs is not None:
            kept_stops[node_id] = allocs
        allocs = placements.get(node_id)
        if allocs is not None:
            kept_placements[node_id] = allocs
        if evictions and node_id in evictions:
            live = _still_running(snapshot, evictions[node_id])
            if live:
                kept_evictions[node_id] = live
    if rejected:
        if plan.all_at_once:
            result = PlanResult()
            if placed_out:
                placed_out.clear()  # nothing of it commits: no node's usage moves
        result.rejected_nodes = rejected
        result.refresh_index = snapshot.index
    return result, verdicts


def preemption_evals(snapshot, result: PlanResult, now_ns: int) -> list[Evaluation]:
    """One pending `preemption` eval per job that loses allocs to the committed part of a
    plan, so the job replaces them (or blocks until there is room)."""
    jobs: dict[tuple[str, str], None] = {}
    for evicted in result.node_preemptions.values():
        for alloc in evicted:
            current = snapshot.alloc_by_id(alloc.id)
            if current is not None and not current.terminal:
                jobs[(current.namespace, current.job_id)] = None
    out = []
    for namespace, job_id in jobs:
        job = snapshot.job_by_id(namespace, job_id)
        if job is None or job.stop:
            continue
        out.append(Evaluation(
            id=generate_uuid(), namespace=namespace, priority=job.priority, type=job.type,
            triggered_by=TRIGGER_PREEMPTION, job_id=job_id, job_modify_index=job.job_modify_index,
            status=EVAL_STATUS_PENDING, create_time=now_ns, modify_time=now_ns,
        ))
    return out


def plan_apply_command(plan: Plan, result: PlanResult, updated_at: int, evals: list[Evaluation] | None = None):
    return c.PlanApply(
        eval_id=plan.eval_id,
        job=plan.job,
        node_update=result.node_update,
        node_allocation=result.node_allocation,
        node_preemptions=result.node_preemptions,
        evals=evals or [],
        updated_at=updated_at,
        deployment=plan.deployment, deployment_updates=list(plan.deployment_updates or ()),
    )


@dataclass(order=True)
class _QueuedPlan:
    sort_key: tuple[int, int]
    plan: Plan = field(compare=False)
    future: asyncio.Future = field(compare=False)


def call_from_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> concurrent.futures.Future:
    """Run `fn()` on the loop in one turn and hand its result (or exception) to the
    returned future; when `fn` returns an asyncio future, its outcome instead."""
    done: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
            done.set_exception(exc)
            return
        if isinstance(result, asyncio.Future):
            result.add_done_callback(lambda f: _copy_outcome(f, done))
        else:
            done.set_result(result)

    loop.call_soon_threadsafe(run)
    return done


def _copy_outcome(source: asyncio.Future, target: concurrent.futures.Future) -> None:
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


class PlanApplier:
    """One queue, one loop: plans are verified and committed one at a time."""

    def __init__(self, store, now_ns: Callable[[], int], outstanding: Callable[[str], str | None] | None = None):
        """`outstanding(eval_id)`: the token the broker holds for the eval, so a plan from
        a worker that lost its eval (nack timeout) is refused."""
        self.store = store
        self.now_ns = now_ns
        self.outstanding = outstanding
        self._queue: asyncio.PriorityQueue[_QueuedPlan] | None = None
        self._seq = itertools.count()
        self._task: asyncio.Task | None = None
        self.carrier = usage_carrier(store)

    def start(self) -> None:
        self._queue = asyncio.PriorityQueue()
        self._task = asyncio.create_task(self._run(), name="plan-applier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RuntimeError("plan applier stopped"))

    def _check_submit(self, plan: Plan) -> None:
        if self._queue is None or self._task is None:
            raise RuntimeError("plan applier is not running (not the leader)")
        if self.outstanding is not None and plan.eval_token and self.outstanding(plan.eval_id) != plan.eval_token:
            raise RuntimeError(f"evaluation {plan.eval_id} is no longer outstanding with this token")

    async def submit(self, plan: Plan) -> PlanResult:
        self._check_submit(plan)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_QueuedPlan((-plan.priority, next(self._seq)), plan, future))
        return await future

    def submit_from_thread(self, plan: Plan, loop: asyncio.AbstractEventLoop,
                           before: Callable[[], None] | None = None) -> concurrent.futures.Future:
        """`submit` for a scheduler thread, in one turn of the event loop: when no plan is
        queued the plan is applied in that turn (as the applier task would do next).
        A busy loop (a registration storm) takes long turns; the coroutine round trip
        took 4-5 of them per plan."""

        def on_loop():
            if before is not None:
                before()
            self._check_submit(plan)
            if self._queue.empty():
                return self.apply(plan)
            future = loop.create_future()
            self._queue.put_nowait(_QueuedPlan((-plan.priority, next(self._seq)), plan, future))
            return future

        return call_from_thread(loop, on_loop)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                result = self.apply(item.plan)
            except Exception as exc:  # a bad plan must not stop the applier
                log.exception("applying plan for eval %s failed", item.plan.eval_id)
                if not item.future.done():
                    item.future.set_exception(exc)
                continue
            if not item.future.done():
                item.future.set_result(result)

    def apply(self, plan: Plan) -> PlanResult:
        """Verify against the newest state and commit what fits (synchronously)."""
        snapshot = self.store.snapshot()
        placed: dict = {}
        result, verdicts = evaluate_plan(snapshot, plan, placed)
        for v in verdicts:
            if not v.fits:
                log.info("plan for eval %s: node %s rejected: %s", plan.eval_id, v.node_id, v.reason)
        if result.node_update or result.node_allocation or result.node_preemptions or plan.deployment is not None \
                or plan.deployment_updates:
            now = self.now_ns()
            evals = preemption_evals(snapshot, result, now)
            command = plan_apply_command(plan, result, now, evals)
            if self.carrier is not None:  # carries the usage the fit check counted over to the new state
                self.carrier.expect(command, snapshot, placed)
            # the allocs the fit check found absent need no lookup at commit (on this very state)
            absent_at(command, snapshot.index, {a.id for counted in placed.values() for a in counted.allocs})
            try:
                index = self.store.apply(command)
            finally:
                absent_at(None)
            result.alloc_index = index
            if result.refresh_index:
                result.refresh_index = index
        return result
