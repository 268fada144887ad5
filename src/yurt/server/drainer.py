"""The node drainer (Nomad's `nomad/drainer`): moves allocations off draining nodes.

`compute_drain(snapshot, nodes, now_ns)` is pure: it reads a state snapshot and returns
which allocs to mark `DesiredTransition.Migrate` and which drains are complete. The
rules, per Nomad:

- Service groups move at most `migrate.max_parallel` allocs at a time: a group may have
  `healthy - (count - max_parallel)` allocs in flight, where `healthy` counts the group's
  live allocs with a health verdict. Allocs already marked for migration do not count
  as healthy (so a batch is finished before the next starts).
- An alloc has a health verdict when the client set `DeploymentStatus.Healthy`, or (no
  verdict, as for allocs outside deployments) when it is running and every main task
  has been running for `migrate.min_healthy_time`, or when `migrate.healthy_deadline`
  passed since it was created (unhealthy: Nomad counts any verdict).
- Batch allocs are never marked early: they may run to completion until the deadline.
- System allocs go last: once nothing else is left on the node (unless
  `IgnoreSystemJobs`).
- At the force deadline every remaining alloc is marked at once; `Deadline < 0`
  (`-force`) means the deadline is the start of the drain; `Deadline == 0` never forces.
- A drain is complete when only terminal (or ignored system) allocs remain; the node
  then stays ineligible, with `LastDrain.Status = "complete"`.

`NodeDrainer.tick(server)` is the leader loop's part: it runs the decision when the
allocs or nodes changed (or a second passed: health and deadlines move with time) and
applies the result as commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yurt.structs import (
    ALLOC_CLIENT_RUNNING,
    EVAL_STATUS_PENDING,
    JOB_TYPE_BATCH,
    JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM,
    SECOND,
    TASK_STATE_RUNNING,
    TRIGGER_NODE_DRAIN,
    Allocation,
    DesiredTransition,
    DrainStrategy,
    Evaluation,
    Job,
    Node,
    NodeEvent,
    TaskGroup,
    generate_uuid,
)
from yurt.structs.timefmt import GO_ZERO_TIME, format_rfc3339_ns, parse_rfc3339_ns

DEFAULT_MIN_HEALTHY_TIME = 10 * SECOND
DEFAULT_HEALTHY_DEADLINE = 300 * SECOND
RECHECK_INTERVAL_NS = 1 * SECOND
DRAIN_COMPLETE = "Node drain complete"
DRAIN_SUBSYSTEM = "Drain"
TASK_STARTED = "Started"


@dataclass
class DrainActions:
    migrate: list[Allocation] = field(default_factory=list)  # mark DesiredTransition.Migrate
    complete: list[str] = field(default_factory=list)  # node IDs whose drain is done


def force_deadline_ns(strategy: DrainStrategy) -> int | None:
    """When remaining allocs are force-migrated; None = never (no deadline)."""
    if strategy.deadline < 0:
        return parse_rfc3339_ns(strategy.started_at)
    if strategy.deadline == 0:
        return None
    forced = parse_rfc3339_ns(strategy.force_deadline)
    return forced or parse_rfc3339_ns(strategy.started_at) + strategy.deadline


def with_deadline(strategy: DrainStrategy, now_ns: int, previous: DrainStrategy | None = None) -> DrainStrategy:
    """A drain's strategy as Nomad's Node.UpdateDrain stores it: `ForceDeadline` = now +
    deadline (Go's zero time for no deadline or `-force`), `StartedAt` kept from the drain
    being updated."""
    from yurt.structs import evolve

    forced = format_rfc3339_ns(now_ns + strategy.deadline) if strategy.deadline > 0 else GO_ZERO_TIME
    started = previous.started_at if previous is not None and previous.started_at else format_rfc3339_ns(now_ns)
    return evolve(strategy, started_at=started, force_deadline=forced)


def _job_of(snapshot, alloc: Allocation) -> Job | None:
    return alloc.job or snapshot.job_by_id(alloc.namespace, alloc.job_id)


def _is_system(job: Job | None) -> bool:
    return job is not None and job.type in (JOB_TYPE_SYSTEM, JOB_TYPE_SYSBATCH)


def alloc_healthy(alloc: Allocation, tg: TaskGroup, now_ns: int) -> bool:
    """Has this live alloc earned a health verdict that lets the group drain further?"""
    if alloc.terminal:
        return False
    status = alloc.deployment_status
    if status is not None and status.healthy is not None:
        return True  # Nomad: any verdict counts (HasHealth)
    deadline = (tg.migrate.healthy_deadline if tg.migrate else 0) or DEFAULT_HEALTHY_DEADLINE
    if alloc.create_time and now_ns - alloc.create_time >= deadline:
        return True  # no verdict within healthy_deadline: unhealthy, which is a verdict too
    if alloc.client_status != ALLOC_CLIENT_RUNNING:
        return False
    min_healthy = (tg.migrate.min_healthy_time if tg.migrate else 0) or DEFAULT_MIN_HEALTHY_TIME
    states = alloc.task_states or {}
    main = [t for t in tg.tasks or () if t.lifecycle is None or t.lifecycle.sidecar]
    for task in main:
        state = states.get(task.name)
        if state is None or state.state != TASK_STATE_RUNNING:
            return False
        started = max((e.time for e in state.events or () if e.type == TASK_STARTED), default=0)
        if not started or now_ns - started < min_healthy:
            return False
    return bool(main)


def _drain_group(tg: TaskGroup, allocs: list[Allocation], draining: set[str], now_ns: int) -> list[Allocation]:
    """The allocs of one service group to mark now (Nomad's handleTaskGroup)."""
    healthy = 0
    drainable = []
    for alloc in allocs:
        if alloc.terminal:
            continue
        migrating = bool(alloc.desired_transition.migrate)
        if not migrating and alloc_healthy(alloc, tg, now_ns):
            healthy += 1
        if alloc.node_id in draining and not migrating:
            drainable.append(alloc)
    max_parallel = tg.migrate.max_parallel if tg.migrate else 1
    count = min(len(drainable), healthy - (tg.count - max_parallel))
    return sorted(drainable, key=lambda a: (a.create_index, a.id))[:max(count, 0)]


def _remaining(snapshot, node: Node) -> list[Allocation]:
    """Live allocs that keep the drain from completing."""
    ignore_system = node.drain_strategy.ignore_system_jobs
    return [
        a for a in snapshot.allocs_by_node(node.id)
        if not a.terminal and not (ignore_system and _is_system(_job_of(snapshot, a)))
    ]


def compute_drain(snapshot, nodes: list[Node], now_ns: int) -> DrainActions:
    """What the drainer does now for these draining nodes (pure)."""
    actions = DrainActions()
    draining = {n.id: n for n in nodes if n.drain_strategy is not None}
    marked: set[str] = set()

    def mark(alloc: Allocation) -> None:
        if alloc.id not in marked and not alloc.desired_transition.migrate:
            marked.add(alloc.id)
            actions.migrate.append(alloc)

    remaining = {node_id: _remaining(snapshot, node) for node_id, node in draining.items()}
    forced = set()
    for node_id, node in draining.items():
        deadline = force_deadline_ns(node.drain_strategy)
        if deadline is not None and now_ns >= deadline:
            forced.add(node_id)
            for alloc in remaining[node_id]:
                mark(alloc)
    _drain_services(snapshot, draining, forced, remaining, now_ns, mark)
    for node_id, allocs in remaining.items():
        if node_id in forced:
            continue
        jobs = {a.id: _job_of(snapshot, a) for a in allocs}
        if all(_is_system(job) for job in jobs.values()):
            for alloc in allocs:
                mark(alloc)  # system jobs go last
    actions.complete = [node_id for node_id, allocs in remaining.items() if not allocs]
    return actions


def _drain_services(snapshot, draining: dict, forced: set, remaining: dict, now_ns: int, mark) -> None:
    """Service groups with allocs on draining nodes, under their migrate.max_parallel."""
    groups: dict[tuple[str, str], set[str]] = {}
    for node_id, allocs in remaining.items():
        if node_id in forced:
            continue
        for alloc in allocs:
            groups.setdefault((alloc.namespace, alloc.job_id), set()).add(alloc.task_group)
    for (namespace, job_id), names in sorted(groups.items()):
        job = snapshot.job_by_id(namespace, job_id)
        if job is None or _is_system(job) or job.type == JOB_TYPE_BATCH:
            continue  # batch allocs run to completion until the deadline
        allocs = snapshot.allocs_by_job(namespace, job_id)
        for tg in job.task_groups or ():
            if tg.name not in names or tg.migrate is None:
                continue
            group_allocs = [a for a in allocs if a.task_group == tg.name]
            for alloc in _drain_group(tg, group_allocs, set(draining), now_ns):
                if alloc.node_id not in forced:
                    mark(alloc)


def drain_evals(snapshot, allocs: list[Allocation], now_ns: int) -> list[Evaluation]:
    """One `node-drain` eval per job of the marked allocs."""
    evals = {}
    for alloc in allocs:
        key = (alloc.namespace, alloc.job_id)
        job = snapshot.job_by_id(*key)
        if key in evals or job is None:
            continue
        evals[key] = Evaluation(
            id=generate_uuid(), namespace=job.namespace, priority=job.priority, type=job.type,
            triggered_by=TRIGGER_NODE_DRAIN, job_id=job.id, job_modify_index=job.job_modify_index,
            status=EVAL_STATUS_PENDING, create_time=now_ns, modify_time=now_ns,
        )
    return list(evals.values())


def drain_metadata(node: Node, status: str, now_ns: int, meta: dict | None = None) -> dict:
    """Nomad's `LastDrain` (DrainMetadata) for a drain that starts, completes or is canceled."""
    last = dict(node.last_drain or {})
    started = last.get("StartedAt") if node.drain_strategy is not None and last else None
    return {
        "StartedAt": started or format_rfc3339_ns(now_ns),
        "UpdatedAt": format_rfc3339_ns(now_ns),
        "Status": status,
        "AccessorID": last.get("AccessorID", ""),
        "Meta": meta if meta is not None else last.get("Meta"),
    }


class NodeDrainer:
    """The leader loop's drainer: decide, then apply the marks and completions."""

    def __init__(self) -> None:
        self._last_index: tuple[int, int] | None = None
        self._last_run = 0

    def tick(self, server) -> None:
        if not server.draining_nodes:
            return
        snapshot = server.state.snapshot()
        nodes = []
        for node_id in list(server.draining_nodes):
            node = snapshot.node_by_id(node_id)
            if node is None or node.drain_strategy is None:
                server.draining_nodes.discard(node_id)
            else:
                nodes.append(node)
        now = server.now_ns()
        index = (snapshot.table_index("allocs"), snapshot.table_index("nodes"))
        if index == self._last_index and now - self._last_run < RECHECK_INTERVAL_NS:
            return
        self._last_index, self._last_run = index, now
        if nodes:
            self.apply(server, snapshot, nodes, compute_drain(snapshot, nodes, now), now)

    @staticmethod
    def apply(server, snapshot, nodes: list[Node], actions: DrainActions, now: int) -> None:
        from yurt.state.commands import AllocDesiredTransition, NodeUpdateDrain

        if actions.migrate:
            transitions = {a.id: DesiredTransition(migrate=True) for a in actions.migrate}
            server.state.apply(AllocDesiredTransition(
                transitions=transitions, evals=drain_evals(snapshot, actions.migrate, now)))
        by_id = {n.id: n for n in nodes}
        for node_id in actions.complete:
            node = by_id[node_id]
            event = NodeEvent(message=DRAIN_COMPLETE, subsystem=DRAIN_SUBSYSTEM, timestamp=format_rfc3339_ns(now))
            server.state.apply(NodeUpdateDrain(
                node_id=node_id, drain_strategy=None, mark_eligible=False, updated_at=now, event=event,
                last_drain=drain_metadata(node, "complete", now)))
            server.draining_nodes.discard(node_id)
