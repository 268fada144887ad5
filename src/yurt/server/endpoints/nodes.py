"""Node register, heartbeat and status changes, with the `node-update` evals they cause."""

import asyncio
import os
import weakref

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


def _take_ids(pool: list[str] | None, count: int) -> list[str]:
    """`count` IDs off the end of `pool` (made when it has too few)."""
    if pool is None or len(pool) < count:
        return random_uuids(count)
    taken = pool[len(pool) - count:]
    del pool[len(pool) - count:]
    return taken


NODE_STATUSES = (NODE_STATUS_INIT, NODE_STATUS_READY, NODE_STATUS_DOWN, "disconnected")


def system_jobs(snapshot) -> list:
    """The live system and sysbatch jobs (a register of many nodes reads them once)."""
    return [job for job in snapshot.jobs(None)
            if job.type in (JOB_TYPE_SYSTEM, JOB_TYPE_SYSBATCH) and not job.stop]


def node_update_evals(snapshot, node_id: str, now_ns: int, node_modify_index: int | None = None,
                      node: Node | None = None, sys_jobs: list | None = None,
                      id_pool: list[str] | None = None, matches: dict | None = None,
                      index: int = 0) -> list[Evaluation]:
    """One eval per job with an alloc on the node, plus one per system job that may run on
    it: as Nomad's createNodeEvals, a system job outside the node's datacenters or node
    pool gets none. `node`, `node_modify_index`: the node as written (it may not be in
    `snapshot` yet); `sys_jobs`: `system_jobs(snapshot)`; `id_pool`: eval IDs made in
    advance (taken from its end); `matches`: a dict kept over one list of `sys_jobs`, the
    jobs that may run in each (datacenter, node pool) seen; `index`: the index of the
    command that will store them, when the caller knows it (the evals, all new, then carry
    it as their create and modify index: the state stores them as they are, and the
    server's listener needs no lookup of each)."""
    if node is None:
        node = snapshot.node_by_id(node_id)
    jobs = {}
    for alloc in snapshot.allocs_by_node(node_id):
        job = snapshot.job_by_id(alloc.namespace, alloc.job_id)
        if job is not None:
            jobs[(job.namespace, job.id)] = job
    if sys_jobs is None:
        sys_jobs = system_jobs(snapshot)
    for job in sys_jobs if node is None else _matching_jobs(sys_jobs, node, {} if matches is None else matches):
        jobs[(job.namespace, job.id)] = job
    if node_modify_index is None:
        node_modify_index = node.modify_index if node else 0
    eval_ids = _take_ids(id_pool, len(jobs))
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
            create_index=index,
            modify_index=index,
        )
        for job, eval_id in zip(jobs.values(), eval_ids)
    ]


def _matching_jobs(sys_jobs: list, node: Node, matches: dict) -> list:
    """The system jobs whose node pool and datacenters take the node."""
    from yurt.scheduler.feasible import datacenter_matches, pool_matches

    key = (node.datacenter, node.node_pool)
    found = matches.get(key)
    if found is None:
        found = matches[key] = [job for job in sys_jobs if pool_matches(job.node_pool, node.node_pool)
                                and datacenter_matches(job.datacenters, node.datacenter)]
    return found


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
    result = register_nodes(server, [node])[0]
    if isinstance(result, Exception):
        raise result
    return result


def register_nodes(server, nodes: list[Node]) -> list[tuple[int, int] | Exception]:
    """Several registers, each as `register_node` (its node and its node-update evals, its
    own index and heartbeat TTL, or its error), written in one log transaction when they
    are of distinct nodes; a node registering twice waits for the next transaction."""
    results: list = [None] * len(nodes)
    todo = list(range(len(nodes)))
    while todo:
        seen: set[str] = set()
        group, later = [], []
        for i in todo:
            (later if nodes[i].id in seen else group).append(i)
            seen.add(nodes[i].id)
        _register_group(server, nodes, group, results)
        todo = later
    return results


def _register_group(server, nodes: list[Node], group: list[int], results: list) -> None:
    from yurt.scheduler.node_class import computed_class
    from yurt.state.commands import EvalUpsert, NodeRegister

    snapshot = server.state.snapshot()
    now = server.now_ns()
    sys_jobs, matches = system_jobs(snapshot), {}
    ids = random_uuids(len(sys_jobs) * len(group))  # one read of the OS's random source
    commands, last_command, need_evals = [], {}, []
    for i in group:
        node = nodes[i]
        try:
            _check_node(node)
        except EndpointError as err:
            results[i] = err
            continue
        existing = snapshot.node_by_id(node.id)
        if existing is not None and existing.secret_id != node.secret_id:
            results[i] = EndpointError(400, "node secret ID does not match. Not registering node.")
            continue
        # As Nomad's Node.Register: the class is computed once here, so the scheduler's
        # feasibility cache is keyed by a stored value instead of hashing every node per eval.
        node = evolve(node, status=node.status or NODE_STATUS_INIT, status_updated_at=now // 1_000_000_000,
                      computed_class=computed_class(node))
        commands.append(NodeRegister(node=node))
        old_status = existing.status if existing else NODE_STATUS_INIT
        last_command[i] = len(commands) - 1
        if transition_needs_evals(old_status, node.status):
            need_evals.append((i, node, snapshot.index + len(commands)))
    if not commands:
        return
    # The registers' evals go in the same log transaction, all the group's in one command
    # after its nodes (Nomad: one eval update per register, after it), at the index after
    # theirs. A node's index there is the next one after what is before it; the jobs and
    # allocs the evals are computed from are the same as after the registers (they change
    # neither).
    evals_index = snapshot.index + len(commands) + 1
    group_evals, with_evals = [], []
    for i, node, node_index in need_evals:
        evals = node_update_evals(snapshot, node.id, now, node_modify_index=node_index, node=node,
                                  sys_jobs=sys_jobs, id_pool=ids, matches=matches, index=evals_index)
        if evals:
            group_evals.extend(evals)
            with_evals.append(i)
    if group_evals:
        commands.append(EvalUpsert(evals=group_evals))
        for i in with_evals:  # the register's reply carries its evals' index, as Nomad's
            last_command[i] = len(commands) - 1
    try:
        indexes = server.state.apply_batch(commands)
    except Exception:
        if len(last_command) == 1:
            raise
        for i in last_command:  # one at a time: only the failing register fails
            try:
                results[i] = register_node(server, nodes[i])
            except Exception as err:  # noqa: BLE001 - handed to that register's caller
                results[i] = err
        return
    for i, position in last_command.items():
        ttl = server.heartbeats.reset(nodes[i].id)
        results[i] = (indexes[position], int(ttl * 1_000_000_000))


class NodeRegisterBatcher:
    """Registers that arrive in the same event-loop turn (a registration storm) are written
    together by `register_nodes`: one log transaction instead of one per node."""

    def __init__(self, server):
        self.server = server
        self._queue: list[tuple[Node, asyncio.Future]] = []

    async def submit(self, node: Node) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((node, future))
        if len(self._queue) == 1:
            loop.call_soon(self.flush)
        return await future

    def flush(self) -> None:
        queue, self._queue = self._queue, []
        if not queue:
            return
        try:
            results = register_nodes(self.server, [node for node, _ in queue])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting register
            results = [exc] * len(queue)
        for (_, future), result in zip(queue, results):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


_BATCHERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


async def submit_register(server, node: Node) -> tuple[int, int]:
    """`register_node`, batched with the other registers of this loop turn."""
    batcher = _BATCHERS.get(server)
    if batcher is None:
        batcher = _BATCHERS[server] = NodeRegisterBatcher(server)
    return await batcher.submit(node)


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
