"""Node register, heartbeat and status changes, with the `node-update` evals they cause."""

import os

from yurt.structs import (
    EVAL_STATUS_PENDING,
    JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM,
    NODE_STATUS_DOWN,
    NODE_STATUS_INIT,
    NODE_STATUS_READY,
    TRIGGER_NODE_UPDATE,
    Evaluation,
    Node,
    evolve,
)

from .errors import EndpointError


def random_uuids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs, as `generate_uuid` makes them, from one read of
    the OS's random source (a register makes one eval per system job)."""
    data = bytearray(os.urandom(16 * count))
    out = []
    for start in range(0, 16 * count, 16):
        data[start + 6] = (data[start + 6] & 0x0F) | 0x40  # version 4
        data[start + 8] = (data[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = data[start:start + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out

NODE_STATUSES = (NODE_STATUS_INIT, NODE_STATUS_READY, NODE_STATUS_DOWN, "disconnected")


def node_update_evals(snapshot, node_id: str, now_ns: int, node_modify_index: int | None = None) -> list[Evaluation]:
    """One eval per job with an alloc on the node, plus one per system job.
    `node_modify_index`: the node's index when it is not yet in `snapshot`'s version."""
    jobs = {}
    for alloc in snapshot.allocs_by_node(node_id):
        job = snapshot.job_by_id(alloc.namespace, alloc.job_id)
        if job is not None:
            jobs[(job.namespace, job.id)] = job
    for job in snapshot.jobs(None):
        if job.type in (JOB_TYPE_SYSTEM, JOB_TYPE_SYSBATCH) and not job.stop:
            jobs[(job.namespace, job.id)] = job
    if node_modify_index is None:
        node = snapshot.node_by_id(node_id)
        node_modify_index = node.modify_index if node else 0
    return [
        Evaluation(
            id=eval_id,
            namespace=job.namespace,
            priority=job.priority,
            type=job.type,
            triggered_by=TRIGGER_NODE_UPDATE,
            job_id=job.id,
            job_modify_index=job.job_modify_index,
            node_id=node_id,
            node_modify_index=node_modify_index,
            status=EVAL_STATUS_PENDING,
            create_time=now_ns,
            modify_time=now_ns,
        )
        for job, eval_id in zip(jobs.values(), random_uuids(len(jobs)))
    ]


def transition_needs_evals(old: str, new: str) -> bool:
    """Nomad evaluates the node's jobs when it becomes ready or goes down."""
    if old == new:
        return False
    return new in (NODE_STATUS_READY, NODE_STATUS_DOWN, "disconnected")


def _check_node(node: Node) -> None:
    if not node.id:
        raise EndpointError(400, "missing node ID for client registration")
    if not node.datacenter:
        raise EndpointError(400, "missing datacenter for client registration")
    if not node.name:
        raise EndpointError(400, "missing node name for client registration")
    if not node.secret_id:
        raise EndpointError(400, "missing secret ID for client registration")
    if node.status and node.status not in NODE_STATUSES:
        raise EndpointError(400, f"invalid status for node: {node.status!r}")


def register_node(server, node: Node) -> tuple[int, int]:
    """Upsert the node; returns (index, heartbeat TTL in nanoseconds)."""
    from yurt.state.commands import EvalUpsert, NodeRegister

    _check_node(node)
    if not node.status:
        node = evolve(node, status=NODE_STATUS_INIT)
    snapshot = server.state.snapshot()
    existing = snapshot.node_by_id(node.id)
    if existing is not None and existing.secret_id != node.secret_id:
        raise EndpointError(400, "node secret ID does not match. Not registering node.")
    from yurt.scheduler.node_class import computed_class

    now = server.now_ns()
    node = evolve(node, status_updated_at=now // 1_000_000_000)
    # As Nomad's Node.Register: the class is computed once here, so the scheduler's
    # feasibility cache is keyed by a stored value instead of hashing every node per eval.
    node = evolve(node, computed_class=computed_class(node))
    commands = [NodeRegister(node=node)]
    old_status = existing.status if existing else NODE_STATUS_INIT
    if transition_needs_evals(old_status, node.status):
        # The register's evals go in the same log transaction (one commit per register,
        # not two). The node's index there is the next one; the jobs and allocs they are
        # computed from are the same as after the register (it changes neither).
        evals = node_update_evals(snapshot, node.id, now, node_modify_index=snapshot.index + 1)
        if evals:
            commands.append(EvalUpsert(evals=evals))
    index = server.state.apply_batch(commands)[-1]
    ttl = server.heartbeats.reset(node.id)
    return index, int(ttl * 1_000_000_000)


def update_node_status(server, node_id: str, status: str) -> int:
    """Apply a status change (with evals when it matters); returns the index."""
    from yurt.state.commands import NodeUpdateStatus

    snapshot = server.state.snapshot()
    node = snapshot.node_by_id(node_id)
    if node is None:
        raise EndpointError(404, "node not found")
    if node.status == status:
        return snapshot.table_index("nodes")
    now = server.now_ns()
    evals = node_update_evals(snapshot, node_id, now) if transition_needs_evals(node.status, status) else []
    return server.state.apply(
        NodeUpdateStatus(node_id=node_id, status=status, updated_at=now, evals=evals)
    )


def heartbeat_node(server, node_id: str, status: str = "") -> tuple[int, int]:
    """A client's heartbeat: maybe a status change, always a fresh TTL (ns)."""
    if status and status not in NODE_STATUSES:
        raise EndpointError(400, f"invalid status for node: {status!r}")
    snapshot = server.state.snapshot()
    if snapshot.node_by_id(node_id) is None:
        raise EndpointError(404, "node not found")
    index = update_node_status(server, node_id, status) if status else snapshot.table_index("nodes")
    if status == NODE_STATUS_DOWN:
        server.heartbeats.remove(node_id)
        return index, 0
    ttl = server.heartbeats.reset(node_id)
    return index, int(ttl * 1_000_000_000)


def mark_node_down(server, node_id: str) -> int | None:
    """The node missed its heartbeat: down, and its jobs re-evaluated (allocs become lost)."""
    node = server.state.snapshot().node_by_id(node_id)
    if node is None or node.status == NODE_STATUS_DOWN:
        return None
    return update_node_status(server, node_id, NODE_STATUS_DOWN)
