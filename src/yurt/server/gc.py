"""Core garbage collection: old terminal evals and allocs, dead jobs, long-down nodes,
terminal deployments (`deployment_gc_threshold` 1h).

Nomad's thresholds (`eval_gc_threshold` 1h, batch evals 24h, `job_gc_threshold` 4h,
`node_gc_threshold` 24h); `nomad system gc` forces a collection with no age limit.
An alloc is only collected once its client is done with it (client-terminal), or its
node is gone or down, so no running task loses its record.
"""

from dataclasses import dataclass

from yurt.structs import JOB_STATUS_DEAD, JOB_TYPE_BATCH, NODE_STATUS_DOWN

NS = 1_000_000_000


@dataclass
class GCThresholds:
    eval_seconds: float = 3600.0
    batch_eval_seconds: float = 24 * 3600.0
    job_seconds: float = 4 * 3600.0
    node_seconds: float = 24 * 3600.0
    deployment_seconds: float = 3600.0  # Nomad's deployment_gc_threshold


FORCE = GCThresholds(0, 0, 0, 0, 0)


@dataclass
class GCResult:
    eval_ids: list[str]
    alloc_ids: list[str]
    jobs: list[tuple[str, str]]
    node_ids: list[str]
    deployment_ids: list[str] | None = None


def _alloc_collectable(snapshot, alloc) -> bool:
    if alloc.client_terminal:
        return True
    node = snapshot.node_by_id(alloc.node_id)
    return alloc.server_terminal and (node is None or node.status == NODE_STATUS_DOWN)


def _old(modify_ns: int, now_ns: int, seconds: float) -> bool:
    return now_ns - modify_ns >= seconds * NS


def find_garbage(snapshot, now_ns: int, limits: GCThresholds) -> GCResult:
    """What may be deleted now (pure)."""
    result = GCResult([], [], [], [])
    for ev in snapshot.evals(None):
        if not ev.terminal:
            continue
        job = snapshot.job_by_id(ev.namespace, ev.job_id)
        is_batch = (job.type if job else ev.type) == JOB_TYPE_BATCH
        if is_batch and job is not None and job.status != JOB_STATUS_DEAD:
            continue  # a live batch job's evals say why its allocs exist
        limit = limits.batch_eval_seconds if is_batch else limits.eval_seconds
        if not _old(ev.modify_time, now_ns, limit):
            continue
        allocs = snapshot.allocs_by_eval(ev.id)
        if all(_alloc_collectable(snapshot, a) for a in allocs):
            result.eval_ids.append(ev.id)
            result.alloc_ids.extend(a.id for a in allocs)
    for job in snapshot.jobs(None):
        if job.status != JOB_STATUS_DEAD or job.periodic is not None or job.parameterized_job is not None:
            continue
        if not _old(job.submit_time, now_ns, limits.job_seconds):
            continue
        evals = snapshot.evals_by_job(job.namespace, job.id)
        allocs = snapshot.allocs_by_job(job.namespace, job.id)
        if all(e.terminal for e in evals) and all(_alloc_collectable(snapshot, a) for a in allocs):
            result.jobs.append((job.namespace, job.id))
            result.eval_ids.extend(e.id for e in evals if e.id not in result.eval_ids)
            result.alloc_ids.extend(a.id for a in allocs if a.id not in result.alloc_ids)
    for node in snapshot.nodes():
        if node.status != NODE_STATUS_DOWN or not _old(node.status_updated_at * NS, now_ns, limits.node_seconds):
            continue
        if all(a.terminal for a in snapshot.allocs_by_node(node.id)):
            result.node_ids.append(node.id)
    result.deployment_ids = find_deployment_garbage(snapshot, now_ns, limits)
    return result


def find_deployment_garbage(snapshot, now_ns: int, limits: GCThresholds) -> list[str]:
    """Terminal deployments older than the threshold that no live alloc refers to."""
    out = []
    for d in snapshot.deployments(None):
        if d.active or not _old(d.modify_time, now_ns, limits.deployment_seconds):
            continue
        allocs = snapshot.allocs_by_job(d.namespace, d.job_id)
        if all(a.terminal for a in allocs if a.deployment_id == d.id):
            out.append(d.id)
    return out


def collect_garbage(server, limits: GCThresholds) -> GCResult:
    """Find and delete garbage through commands (jobs purged, evals/allocs, nodes)."""
    from yurt.state.commands import DeploymentDelete, EvalDelete, JobDeregister, NodeDeregister

    found = find_garbage(server.state.snapshot(), server.now_ns(), limits)
    if found.eval_ids or found.alloc_ids:
        server.state.apply(EvalDelete(eval_ids=found.eval_ids, alloc_ids=found.alloc_ids))
    for namespace, job_id in found.jobs:
        server.state.apply(JobDeregister(namespace=namespace, job_id=job_id, purge=True,
                                         submit_time=server.now_ns()))
    if found.node_ids:
        server.state.apply(NodeDeregister(node_ids=found.node_ids))
    if found.deployment_ids:
        server.state.apply(DeploymentDelete(deployment_ids=found.deployment_ids))
    return found
