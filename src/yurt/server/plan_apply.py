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
from collections.abc import Callable
from dataclasses import dataclass, field

from yurt.scheduler.usage import NodeBase, _shared_held_by, advance_base, cached_base, node_base, store_base
from yurt.structs import (
    ALLOC_CLIENT_UNKNOWN,
    NODE_STATUS_DISCONNECTED,
    NODE_STATUS_READY,
    Allocation,
    Evaluation,
    Plan,
    PlanResult,
    generate_uuid,
)
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


@dataclass
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


def _held(alloc: Allocation) -> tuple[int, int, int, frozenset[int], frozenset[int]]:
    """(cpu, memory, disk, reserved cores, ports) the alloc holds, from the scheduler's
    cache per allocated-resources object (`usage._shared_held_by`: a plan's placements of
    one group usually share one)."""
    _, cpu, mem, disk, cores, ports = _shared_held_by(alloc)
    return cpu, mem, disk, cores, ports


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
    removed = {a.id for a in placed}
    if stops or evictions:
        removed.update(a.id for a in stops or ())
        removed.update(a.id for a in evictions or ())
    lookup = getattr(snapshot, "alloc_by_id", None)
    if lookup is None and removed:
        lookup = {a.id: a for a in snapshot.allocs_by_node(node_id)}.get
    # (a plan listing one alloc twice is not counted that way: the commit stores it once)
    only_new = placed_out is not None and not stops and not evictions and len(removed) == len(placed)
    for alloc_id in removed:
        current = lookup(alloc_id)
        if current is None:
            continue
        only_new = False
        if current.node_id != node_id or current.terminal:
            continue
        c_cpu, c_mem, c_disk, c_cores, c_ports = _held(current)
        cpu, mem, disk = cpu + c_cpu, mem + c_mem, disk + c_disk
        if c_cores:
            cores = cores | c_cores
        if c_ports:
            ports = ports - c_ports
    reserved = None
    for alloc in placed:
        if alloc.terminal:
            only_new = False
            continue
        if alloc.allocated_resources is None or alloc.node_id != node_id:
            only_new = False
        a_cpu, a_mem, a_disk, a_cores, held = _held(alloc)
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


def advance_usage(before, after, result: PlanResult, index: int, placed: dict | None = None) -> None:
    """Carry the scheduler's cached usage of each node the commit touched over to the new
    state (old usage + the committed delta), so the next evaluation need not recount the
    node's allocs. Only when the commit directly follows `before` (index `before.index + 1`).
    `placed`: the nodes whose usage after the plan `plan_fits_node` counted (`_Placed`)."""
    index_of = getattr(after, "node_allocs_index", None)
    if index_of is None or index != before.index + 1:
        return  # another write came between: `before` plus this commit is not `after`
    # the committed allocs are the plan's (with job and indexes filled in), and no node
    # object changed (a plan writes none)
    placed = placed or {}
    for node_id, counted in placed.items():
        if node_id in result.node_allocation and index_of(node_id) == index:
            _carry_placed(counted, index)
    ids_by_node: dict[str, set[str]] = {}
    for table in (result.node_update, result.node_allocation, result.node_preemptions):
        for node_id, allocs in table.items():
            if node_id not in placed:
                ids_by_node.setdefault(node_id, set()).update(a.id for a in allocs)
    _advance_nodes(before, after, ids_by_node, index)


def advance_usage_of_updates(before, after, alloc_ids, index: int) -> None:
    """`advance_usage` for a commit of client status updates (`AllocClientUpdate`): each
    update bumps its node's alloc index, so without this the next evaluation recounted
    every alloc of every node that had just reported (O(allocs on the node) per placed
    alloc: ~40% of server CPU in the second half of C1M). A running report changes no
    usage; a terminal one frees the alloc's resources, which `advance_base` subtracts."""
    if getattr(after, "node_allocs_index", None) is None or index != before.index + 1:
        return  # another write came between
    ids_by_node: dict[str, set[str]] = {}
    for alloc_id in alloc_ids:
        alloc = before.alloc_by_id(alloc_id)
        if alloc is not None:
            ids_by_node.setdefault(alloc.node_id, set()).add(alloc_id)
    _advance_nodes(before, after, ids_by_node, index)


def _advance_nodes(before, after, ids_by_node: dict[str, set[str]], index: int) -> None:
    """`advance_base` of each node in `ids_by_node` over the commit at `index` (directly
    after `before`), from its allocs there and in `after`; a node object the commit
    replaced, or a node the commit did not write, is left to be recounted."""
    index_of = after.node_allocs_index
    for node_id, ids in ids_by_node.items():
        node = after.node_by_id(node_id)
        if node is None or before.node_by_id(node_id) is not node or index_of(node_id) != index:
            continue
        changes = [(before.alloc_by_id(i), after.alloc_by_id(i)) for i in ids]
        advance_base(node, before.node_allocs_index(node_id), index, changes)


# what `_carry_placed` copies from the old base unchanged (it sets the others)
_KEPT_SLOTS = tuple(n for n in NodeBase.__slots__ if n not in (
    "fingerprint", "version", "free_cpu", "free_mem", "free_disk", "free_cores", "ports", "jobs"))


def _carry_placed(counted: _Placed, index: int) -> None:
    """`advance_base` for a node that got only new allocs, from the sums the fit check made."""
    base = counted.base
    new = NodeBase.__new__(NodeBase)
    for name in _KEPT_SLOTS:
        setattr(new, name, getattr(base, name))
    new.fingerprint = (None, None, -1)  # the allocs-list fingerprint never matches: recount there
    new.version = (counted.node, index)
    new.free_cpu, new.free_mem, new.free_disk = counted.cpu, counted.mem, counted.disk
    new.free_cores, new.ports = frozenset(counted.cores), frozenset(counted.ports)  # no copy when frozen
    jobs = new.jobs = dict(base.jobs)
    copied: set[tuple[str, str]] = set()
    for alloc in counted.allocs:
        key = (alloc.namespace, alloc.job_id)
        if key not in copied:
            copied.add(key)
            jobs[key] = dict(jobs.get(key) or ())
        groups = jobs[key]
        groups[alloc.task_group] = groups.get(alloc.task_group, 0) + 1
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


def evaluate_plan(snapshot, plan: Plan, placed_out: dict | None = None) -> tuple[PlanResult, list[NodeVerdict]]:
    """What of `plan` can be committed on `snapshot` (no side effects but `placed_out`:
    see `plan_fits_node`)."""
    node_ids = sorted(set(plan.node_update) | set(plan.node_allocation) | set(plan.node_preemptions))
    verdicts = [evaluate_node(snapshot, plan, node_id, placed_out) for node_id in node_ids]
    rejected = [v.node_id for v in verdicts if not v.fits]
    rejected_set = set(rejected)
    result = PlanResult()
    if rejected and plan.all_at_once:
        result.rejected_nodes = rejected
        result.refresh_index = snapshot.index
        return result, verdicts
    for node_id in node_ids:
        if node_id in rejected_set:
            continue
        if node_id in plan.node_update:
            result.node_update[node_id] = plan.node_update[node_id]
        if node_id in plan.node_allocation:
            result.node_allocation[node_id] = plan.node_allocation[node_id]
        if node_id in plan.node_preemptions:
            live = _still_running(snapshot, plan.node_preemptions[node_id])
            if live:
                result.node_preemptions[node_id] = live
    if rejected:
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
    from yurt.state.commands import PlanApply

    return PlanApply(
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
            index = self.store.apply(plan_apply_command(plan, result, now, evals))
            result.alloc_index = index
            advance_usage(snapshot, self.store.snapshot(), result, index, placed)
            if result.refresh_index:
                result.refresh_index = index
        return result
