"""The `deployment` table and the FSM rules that keep deployments right (Nomad's
UpsertPlanResults deployment part, UpdateDeploymentStatus / Promotion / AllocHealth).

Counts are kept by the FSM as allocs change: an alloc placed into (or moved in place into)
a deployment counts as placed (a canary is listed in `PlacedCanaries`); a client health
report that sets `DeploymentStatus.Healthy` for the first time counts it healthy or
unhealthy. The progress deadline starts at the first placement and moves forward with
each healthy alloc. A deployment marked `successful` marks its job version stable.
Times come from the commands; nothing here reads the clock.
"""

from yurt.structs import Allocation, evolve
from yurt.structs.deployment import (
    DEPLOYMENT_STATUS_RUNNING,
    DEPLOYMENT_STATUS_SUCCESSFUL,
    DESC_RUNNING,
    DESC_RUNNING_AUTO_PROMOTION,
    DESC_RUNNING_NEEDS_PROMOTION,
    Deployment,
)
from yurt.structs.timefmt import format_rfc3339_ns, parse_rfc3339_ns

from . import commands as c
from .fsm_jobs import register_job, set_job_stability, upsert_evals
from .txn import StateError, Txn


def _require(txn: Txn, deployment_id: str) -> Deployment:
    d = txn.deployment_by_id(deployment_id)
    if d is None:
        raise StateError(f'deployment "{deployment_id}" not found')
    return d


def _put(txn: Txn, d: Deployment, now: int) -> None:
    txn.put_deployment(evolve(d, modify_index=txn.index, modify_time=now or d.modify_time))


def upsert_deployment(txn: Txn, d: Deployment, now: int) -> None:
    """Insert or replace a deployment from a plan, keeping the counts the FSM maintains."""
    existing = txn.deployment_by_id(d.id)
    groups = dict(d.task_groups)
    if existing is not None:
        for name, state in existing.task_groups.items():
            if name in groups:
                groups[name] = evolve(groups[name], placed_allocs=state.placed_allocs,
                                      healthy_allocs=state.healthy_allocs, unhealthy_allocs=state.unhealthy_allocs,
                                      require_progress_by=state.require_progress_by,
                                      placed_canaries=state.placed_canaries)
    create_index = existing.create_index if existing is not None else txn.index
    txn.put_deployment(evolve(d, task_groups=groups, create_index=create_index, modify_index=txn.index,
                              modify_time=now or d.modify_time, create_time=d.create_time or now))


def update_status(txn: Txn, deployment_id: str, status: str, description: str, now: int) -> None:
    d = _require(txn, deployment_id)
    _put(txn, evolve(d, status=status, status_description=description), now)
    if status == DEPLOYMENT_STATUS_SUCCESSFUL and txn.job_version(d.namespace, d.job_id, d.job_version) is not None:
        set_job_stability(txn, d.namespace, d.job_id, d.job_version, True)


def apply_plan_deployment(txn: Txn, cmd: c.PlanApply) -> None:
    """Before the plan's allocs are written: the new or changed deployment, then status updates."""
    if cmd.deployment is not None:
        upsert_deployment(txn, cmd.deployment, cmd.updated_at)
    for update in cmd.deployment_updates or ():
        update_status(txn, update.deployment_id, update.status, update.status_description, cmd.updated_at)


def _health(alloc: Allocation | None) -> bool | None:
    return alloc.deployment_status.healthy if alloc is not None and alloc.deployment_status is not None else None


def track_alloc(txn: Txn, alloc: Allocation, existing: Allocation | None, now: int) -> None:
    """Count an alloc write into its deployment (placed, canary, healthy, unhealthy)."""
    if not alloc.deployment_id:
        return
    d = txn.deployment_by_id(alloc.deployment_id)
    state = d.task_groups.get(alloc.task_group) if d is not None else None
    if state is None:
        return
    same = existing is not None and existing.deployment_id == alloc.deployment_id
    placed = 0 if same else 1
    before = _health(existing) if same else None
    after = _health(alloc)
    healthy = 1 if before is None and after is True else 0
    unhealthy = 1 if before is None and after is False else 0
    if not (placed or healthy or unhealthy):
        return
    changes: dict = {'placed_allocs': state.placed_allocs + placed, 'healthy_allocs': state.healthy_allocs + healthy,
                         'unhealthy_allocs': state.unhealthy_allocs + unhealthy}
    if placed and alloc.deployment_status is not None and alloc.deployment_status.canary:
        changes["placed_canaries"] = [*(state.placed_canaries or ()), alloc.id]
    if state.progress_deadline:
        current = parse_rfc3339_ns(state.require_progress_by)
        if placed and not current:
            changes["require_progress_by"] = format_rfc3339_ns((alloc.modify_time or now) + state.progress_deadline)
        elif healthy and now + state.progress_deadline > current:
            changes["require_progress_by"] = format_rfc3339_ns(now + state.progress_deadline)
    groups = {**d.task_groups, alloc.task_group: evolve(state, **changes)}
    _put(txn, evolve(d, task_groups=groups), now)


def _status_set(txn: Txn, cmd: c.DeploymentStatusSet) -> None:
    update_status(txn, cmd.deployment_id, cmd.status, cmd.status_description, cmd.updated_at)
    if cmd.job is not None:
        register_job(txn, cmd.job, cmd.updated_at)
    if cmd.eval is not None:
        stored = txn.job_by_id(cmd.eval.namespace, cmd.eval.job_id)
        ev = evolve(cmd.eval, job_modify_index=stored.job_modify_index) if stored is not None else cmd.eval
        upsert_evals(txn, [ev])


def _promote(txn: Txn, cmd: c.DeploymentPromote) -> None:
    d = _require(txn, cmd.deployment_id)
    if not d.active:
        raise StateError("can't promote terminal deployment")
    unknown = [g for g in cmd.groups if g not in d.task_groups]
    if unknown:
        raise StateError(f'deployment has no task group "{unknown[0]}"')
    wanted = [g for g, s in sorted(d.task_groups.items())
              if (cmd.all or g in cmd.groups) and s.desired_canaries > 0]
    if not wanted:
        raise StateError(f'deployment "{d.id}" has no canaries to promote')
    errors = []
    for g in wanted:
        s = d.task_groups[g]
        healthy = sum(1 for i in s.placed_canaries or () if _health(txn.alloc_by_id(i)) is True)
        if healthy != s.desired_canaries:
            errors.append(f'Task group "{g}" has {healthy}/{s.desired_canaries} healthy allocations')
    if errors:
        raise StateError("; ".join(errors))
    groups = dict(d.task_groups)
    for g in wanted:
        groups[g] = evolve(groups[g], promoted=True)
        for alloc_id in groups[g].placed_canaries or ():
            alloc = txn.alloc_by_id(alloc_id)
            if alloc is not None and alloc.deployment_status is not None and alloc.deployment_status.canary:
                txn.put_alloc(evolve(alloc, deployment_status=evolve(alloc.deployment_status, canary=False,
                                                                     modify_index=txn.index),
                                     modify_index=txn.index))
    desc = d.status_description
    if desc in (DESC_RUNNING_NEEDS_PROMOTION, DESC_RUNNING_AUTO_PROMOTION) and d.status == DEPLOYMENT_STATUS_RUNNING:
        desc = DESC_RUNNING
    _put(txn, evolve(d, task_groups=groups, status_description=desc), cmd.updated_at)
    if cmd.eval is not None:
        upsert_evals(txn, [cmd.eval])


def _alloc_health(txn: Txn, cmd: c.DeploymentAllocHealth) -> None:
    d = _require(txn, cmd.deployment_id)
    if not d.active:
        raise StateError(f'deployment "{d.id}" is terminal; cannot set allocation health')
    from yurt.structs import AllocDeploymentStatus

    for healthy, ids in ((True, cmd.healthy), (False, cmd.unhealthy)):
        for alloc_id in ids:
            alloc = txn.alloc_by_id(alloc_id)
            if alloc is None or alloc.deployment_id != d.id:
                raise StateError(f'allocation "{alloc_id}" is not part of deployment "{d.id}"')
            status = alloc.deployment_status or AllocDeploymentStatus()
            updated = evolve(alloc, deployment_status=evolve(status, healthy=healthy,
                                                             timestamp=format_rfc3339_ns(cmd.updated_at),
                                                             modify_index=txn.index),
                             modify_index=txn.index)
            track_alloc(txn, updated, alloc, cmd.updated_at)
            txn.put_alloc(updated)
    if cmd.eval is not None:
        upsert_evals(txn, [cmd.eval])


def _delete(txn: Txn, cmd: c.DeploymentDelete) -> None:
    for deployment_id in cmd.deployment_ids:
        txn.delete_deployment(deployment_id)


def delete_job_deployments(txn: Txn, namespace: str, job_id: str) -> None:
    """A purged job takes its deployments with it."""
    for d in txn.deployments_by_job(namespace, job_id):
        txn.delete_deployment(d.id)


HANDLERS = {
    c.DeploymentStatusSet: _status_set,
    c.DeploymentPromote: _promote,
    c.DeploymentAllocHealth: _alloc_health,
    c.DeploymentDelete: _delete,
}
