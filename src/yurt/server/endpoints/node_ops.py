"""Node operations: scheduling eligibility, forced evaluation, drain, purge."""

from yurt.structs import (
    JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM,
    NODE_ELIGIBLE,
    NODE_INELIGIBLE,
    TRIGGER_NODE_DRAIN,
    DesiredTransition,
    DrainStrategy,
    evolve,
)

from .errors import EndpointError
from .nodes import node_update_evals


def _node_or_404(server, node_id: str):
    node = server.state.snapshot().node_by_id(node_id)
    if node is None:
        raise EndpointError(404, "node not found")
    return node


def set_node_eligibility(server, node_id: str, eligibility: str) -> tuple[list[str], int]:
    """Returns (IDs of the evals created, index). Becoming eligible re-evaluates the node."""
    from yurt.state.commands import NodeUpdateEligibility

    if eligibility not in (NODE_ELIGIBLE, NODE_INELIGIBLE):
        raise EndpointError(400, f"invalid scheduling eligibility {eligibility!r}")
    node = _node_or_404(server, node_id)
    if node.drain_strategy is not None and eligibility == NODE_ELIGIBLE:
        raise EndpointError(400, "can not set node's scheduling eligibility to eligible while it is draining")
    evals = []
    if eligibility == NODE_ELIGIBLE and node.scheduling_eligibility != NODE_ELIGIBLE:
        evals = node_update_evals(server.state.snapshot(), node_id, server.now_ns())
    index = server.state.apply(NodeUpdateEligibility(
        node_id=node_id, eligibility=eligibility, evals=evals, updated_at=server.now_ns()))
    return [e.id for e in evals], index


def evaluate_node(server, node_id: str) -> tuple[list[str], int]:
    from yurt.state.commands import EvalUpsert

    _node_or_404(server, node_id)
    evals = node_update_evals(server.state.snapshot(), node_id, server.now_ns())
    if not evals:
        return [], server.state.snapshot().table_index("evals")
    return [e.id for e in evals], server.state.apply(EvalUpsert(evals=evals))


def drain_node(server, node_id: str, strategy: DrainStrategy | None, mark_eligible: bool) -> int:
    """Start (strategy) or cancel (None) a drain; the server's drainer moves the allocs."""
    from yurt.state.commands import NodeUpdateDrain

    _node_or_404(server, node_id)
    if strategy is not None and not strategy.started_at:
        strategy = evolve(strategy, started_at=str(server.now_ns()))
    return server.state.apply(NodeUpdateDrain(
        node_id=node_id, drain_strategy=strategy, mark_eligible=mark_eligible, updated_at=server.now_ns()))


def purge_node(server, node_id: str) -> tuple[list[str], int]:
    """Forget the node; its jobs are re-evaluated (its allocs become lost)."""
    from yurt.state.commands import EvalUpsert, NodeDeregister

    _node_or_404(server, node_id)
    evals = node_update_evals(server.state.snapshot(), node_id, server.now_ns())
    index = server.state.apply(NodeDeregister(node_ids=[node_id]))
    server.heartbeats.remove(node_id)
    if evals:
        index = server.state.apply(EvalUpsert(evals=evals))
    return [e.id for e in evals], index


def drain_step(server, node) -> int | None:
    """One drainer pass for a draining node: mark its allocs to migrate (with node-drain
    evals), and end the drain once nothing but ignored system allocs is left. Simplified
    from Nomad: every service/batch alloc is marked at once (no migrate.max_parallel)."""
    from yurt.state.commands import AllocDesiredTransition, NodeUpdateDrain

    snapshot = server.state.snapshot()
    strategy = node.drain_strategy
    live = [a for a in snapshot.allocs_by_node(node.id) if not a.terminal]

    def is_system(alloc) -> bool:
        job = snapshot.job_by_id(alloc.namespace, alloc.job_id) or alloc.job
        return job is not None and job.type in (JOB_TYPE_SYSTEM, JOB_TYPE_SYSBATCH)

    movable = [a for a in live if not is_system(a)]
    if not strategy.ignore_system_jobs and not movable:
        movable = [a for a in live if is_system(a)]
    unmarked = [a for a in movable if not a.desired_transition.migrate]
    if unmarked:
        evals = [
            evolve(e, triggered_by=TRIGGER_NODE_DRAIN)
            for e in node_update_evals(snapshot, node.id, server.now_ns())
            if any(a.job_id == e.job_id and a.namespace == e.namespace for a in unmarked)
        ]
        transitions = {a.id: DesiredTransition(migrate=True) for a in unmarked}
        return server.state.apply(AllocDesiredTransition(transitions=transitions, evals=evals))
    if not movable:
        return server.state.apply(NodeUpdateDrain(node_id=node.id, drain_strategy=None,
                                                  mark_eligible=False, updated_at=server.now_ns()))
    return None
