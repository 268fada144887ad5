"""The finite state machine: apply one command to a transaction.

Pure and deterministic: the result depends only on the committed tables, the index
and the command. No clock, no IO. Invalid commands raise `StateError` before the
transaction is committed, so nothing of them is kept.
"""

from collections.abc import Callable
from datetime import datetime, timezone

from yurt.structs import NODE_ELIGIBLE, NODE_INELIGIBLE, Node, NodeEvent, evolve

from . import commands as c
from .fsm_allocs import apply_client_update, apply_desired_transitions, apply_plan
from .fsm_jobs import (
    delete_evals,
    deregister_job,
    register_job,
    set_job_stability,
    upsert_evals,
)
from .deployments import HANDLERS as DEPLOYMENT_HANDLERS
from .deployments import delete_job_deployments
from .periodic_launch import record_launch_on_register, upsert_launch
from .scaling_events import add_scaling_event
from .txn import StateError, Txn


def apply_command(txn: Txn, command: c.Command) -> None:
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise StateError(f"unknown command type {type(command).__name__}")
    handler(txn, command)


def _job_register(txn: Txn, cmd: c.JobRegister) -> None:
    stored = register_job(txn, cmd.job, cmd.submit_time)
    record_launch_on_register(txn, stored, cmd.submit_time)
    if cmd.eval is not None:
        upsert_evals(txn, [evolve(cmd.eval, job_modify_index=stored.job_modify_index)])


def _job_deregister(txn: Txn, cmd: c.JobDeregister) -> None:
    deregister_job(txn, cmd.namespace, cmd.job_id, cmd.purge, cmd.submit_time)
    if cmd.purge:
        txn.delete_periodic_launch(cmd.namespace, cmd.job_id)
        txn.delete_scaling_events(cmd.namespace, cmd.job_id)
        delete_job_deployments(txn, cmd.namespace, cmd.job_id)
    if cmd.eval is not None:
        upsert_evals(txn, [cmd.eval])


def _job_stability(txn: Txn, cmd: c.JobStabilitySet) -> None:
    set_job_stability(txn, cmd.namespace, cmd.job_id, cmd.version, cmd.stable)


def _eval_upsert(txn: Txn, cmd: c.EvalUpsert) -> None:
    upsert_evals(txn, cmd.evals)


def _eval_delete(txn: Txn, cmd: c.EvalDelete) -> None:
    delete_evals(txn, cmd.eval_ids, cmd.alloc_ids)


def _unix_seconds(t: int) -> int:
    """Nomad keeps `Node.StatusUpdatedAt` in unix seconds; commands carry nanoseconds
    (a value that is already in seconds is kept)."""
    return t // 1_000_000_000 if t > 10**12 else t


def _rfc3339(seconds: int) -> str:
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _node_register(txn: Txn, cmd: c.NodeRegister) -> None:
    node = cmd.node
    existing = txn.node_by_id(node.id)
    if existing is None:
        events = node.events or [
            NodeEvent(
                message="Node registered",
                subsystem="Cluster",
                timestamp=_rfc3339(_unix_seconds(node.status_updated_at)),
                create_index=txn.index,
            )
        ]
        stored = evolve(node, create_index=txn.index, modify_index=txn.index, events=events)
    else:
        stored = evolve(
            node,
            create_index=existing.create_index,
            modify_index=txn.index,
            scheduling_eligibility=existing.scheduling_eligibility,
            drain_strategy=existing.drain_strategy,
            last_drain=existing.last_drain,
            events=existing.events,
        )
    txn.put_node(stored)


def _require_node(txn: Txn, node_id: str) -> Node:
    node = txn.node_by_id(node_id)
    if node is None:
        raise StateError(f'node "{node_id}" not found')
    return node


def _add_event(node: Node, event: NodeEvent | None, index: int) -> list[NodeEvent] | None:
    if event is None:
        return node.events
    events = [*(node.events or ()), evolve(event, create_index=index)]
    return events[-10:]  # Nomad keeps the last 10 node events


def _node_status(txn: Txn, cmd: c.NodeUpdateStatus) -> None:
    node = _require_node(txn, cmd.node_id)
    txn.put_node(
        evolve(
            node,
            status=cmd.status,
            status_updated_at=_unix_seconds(cmd.updated_at) or node.status_updated_at,
            events=_add_event(node, cmd.event, txn.index),
            modify_index=txn.index,
        )
    )
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _node_eligibility(txn: Txn, cmd: c.NodeUpdateEligibility) -> None:
    node = _require_node(txn, cmd.node_id)
    if cmd.eligibility not in (NODE_ELIGIBLE, NODE_INELIGIBLE):
        raise StateError(f'eligibility "{cmd.eligibility}" is not one of "eligible", "ineligible"')
    if node.drain_strategy is not None and cmd.eligibility == NODE_ELIGIBLE:
        raise StateError(f'node "{cmd.node_id}": cannot set eligibility to "eligible" while it is draining')
    txn.put_node(evolve(node, scheduling_eligibility=cmd.eligibility, modify_index=txn.index,
                        events=_add_event(node, cmd.event, txn.index)))
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _node_drain(txn: Txn, cmd: c.NodeUpdateDrain) -> None:
    node = _require_node(txn, cmd.node_id)
    eligibility = node.scheduling_eligibility
    if cmd.drain_strategy is not None:
        eligibility = NODE_INELIGIBLE
    elif cmd.mark_eligible:
        eligibility = NODE_ELIGIBLE
    txn.put_node(
        evolve(
            node,
            drain_strategy=cmd.drain_strategy,
            scheduling_eligibility=eligibility,
            last_drain=cmd.last_drain if cmd.last_drain is not None else node.last_drain,
            events=_add_event(node, cmd.event, txn.index),
            modify_index=txn.index,
        )
    )
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _node_deregister(txn: Txn, cmd: c.NodeDeregister) -> None:
    for node_id in cmd.node_ids:
        _require_node(txn, node_id)
        txn.delete_node(node_id)


def _plan_apply(txn: Txn, cmd: c.PlanApply) -> None:
    apply_plan(txn, cmd)


def _alloc_client_update(txn: Txn, cmd: c.AllocClientUpdate) -> None:
    apply_client_update(txn, cmd)


def _alloc_desired_transition(txn: Txn, cmd: c.AllocDesiredTransition) -> None:
    apply_desired_transitions(txn, cmd)


def _scheduler_config(txn: Txn, cmd: c.SchedulerConfigSet) -> None:
    existing = txn.stored_scheduler_config()
    create_index = existing.create_index if existing is not None else txn.index
    txn.put_scheduler_config(evolve(cmd.config, create_index=create_index, modify_index=txn.index))


def _periodic_launch(txn: Txn, cmd: c.PeriodicLaunchUpsert) -> None:
    if txn.job_by_id(cmd.namespace, cmd.job_id) is None:
        raise StateError(f'job "{cmd.job_id}" in namespace "{cmd.namespace}" not found')
    upsert_launch(txn, cmd.namespace, cmd.job_id, cmd.launch)


def _scaling_event(txn: Txn, cmd: c.ScalingEventRegister) -> None:
    if txn.job_by_id(cmd.namespace, cmd.job_id) is None:
        raise StateError(f'job "{cmd.job_id}" in namespace "{cmd.namespace}" not found')
    add_scaling_event(txn, cmd.namespace, cmd.job_id, cmd.task_group, cmd.event)


_HANDLERS: dict[type, Callable[[Txn, c.Command], None]] = {
    c.JobRegister: _job_register,
    c.JobDeregister: _job_deregister,
    c.JobStabilitySet: _job_stability,
    c.EvalUpsert: _eval_upsert,
    c.EvalDelete: _eval_delete,
    c.NodeRegister: _node_register,
    c.NodeUpdateStatus: _node_status,
    c.NodeUpdateEligibility: _node_eligibility,
    c.NodeUpdateDrain: _node_drain,
    c.NodeDeregister: _node_deregister,
    c.PlanApply: _plan_apply,
    c.AllocClientUpdate: _alloc_client_update,
    c.AllocDesiredTransition: _alloc_desired_transition,
    c.SchedulerConfigSet: _scheduler_config,
    c.PeriodicLaunchUpsert: _periodic_launch,
    c.ScalingEventRegister: _scaling_event,
    **DEPLOYMENT_HANDLERS,
}
