"""Node operations: scheduling eligibility, forced evaluation, drain, purge."""

from yurt.structs import NODE_ELIGIBLE, NODE_INELIGIBLE, DrainStrategy, NodeEvent
from yurt.structs.timefmt import format_rfc3339_ns

from ..drainer import drain_metadata, with_deadline
from .errors import EndpointError
from .nodes import node_update_evals

DRAIN_SET = "Node drain strategy set"
DRAIN_UPDATED = "Node drain strategy updated"
DRAIN_DISABLED = "Node drain disabled"
ELIGIBLE_EVENT = "Node marked as eligible for scheduling"
INELIGIBLE_EVENT = "Node marked as ineligible for scheduling"


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
    if node.scheduling_eligibility == eligibility:
        return [], server.state.snapshot().table_index("nodes")  # nothing to do
    now = server.now_ns()
    evals = node_update_evals(server.state.snapshot(), node_id, now) if eligibility == NODE_ELIGIBLE else []
    message = ELIGIBLE_EVENT if eligibility == NODE_ELIGIBLE else INELIGIBLE_EVENT
    event = NodeEvent(message=message, subsystem="Cluster", timestamp=format_rfc3339_ns(now))
    index = server.state.apply(NodeUpdateEligibility(
        node_id=node_id, eligibility=eligibility, evals=evals, updated_at=now, event=event))
    return [e.id for e in evals], index


def evaluate_node(server, node_id: str) -> tuple[list[str], int]:
    from yurt.state.commands import EvalUpsert

    _node_or_404(server, node_id)
    evals = node_update_evals(server.state.snapshot(), node_id, server.now_ns())
    if not evals:
        return [], server.state.snapshot().table_index("evals")
    return [e.id for e in evals], server.state.apply(EvalUpsert(evals=evals))


def drain_node(server, node_id: str, strategy: DrainStrategy | None, mark_eligible: bool,
               meta: dict[str, str] | None = None) -> tuple[list[str], int]:
    """Start, update (strategy) or cancel (None) a drain; the server's drainer moves the
    allocs. Canceling with `mark_eligible` makes the node eligible again and re-evaluates
    its jobs. Returns (IDs of the evals created, index)."""
    from yurt.state.commands import NodeUpdateDrain

    node = _node_or_404(server, node_id)
    now = server.now_ns()
    if strategy is not None:
        strategy = with_deadline(strategy, now, node.drain_strategy)
        status, message = "draining", DRAIN_SET if node.drain_strategy is None else DRAIN_UPDATED
    else:
        status, message = "canceled", DRAIN_DISABLED
    last_drain = drain_metadata(node, status, now, meta)
    if strategy is None and node.drain_strategy is None:
        last_drain = None  # nothing to cancel: keep the record of the last drain
    evals = []
    if strategy is None and mark_eligible and node.scheduling_eligibility != NODE_ELIGIBLE:
        evals = node_update_evals(server.state.snapshot(), node_id, now)
    event = NodeEvent(message=message, subsystem="Drain", timestamp=format_rfc3339_ns(now))
    index = server.state.apply(NodeUpdateDrain(
        node_id=node_id, drain_strategy=strategy, mark_eligible=mark_eligible, updated_at=now,
        evals=evals, event=event, last_drain=last_drain))
    return [e.id for e in evals], index


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
