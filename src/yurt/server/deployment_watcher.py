"""The deployment watcher (leader loop): watches running deployments and decides.

`watch_deployments(snapshot, now_ns, seen)` is pure and returns the commands to apply:
- a deployment with an unhealthy alloc fails ("Failed due to unhealthy allocations"); one
  whose group passed its `RequireProgressBy` without finishing fails ("Failed due to
  progress deadline"). With `auto_revert` the latest stable job version is registered
  again ("... - rolling back to job version N") in the same command;
- canaries all healthy in groups that all `auto_promote`: the deployment is promoted;
- more healthy allocs than last seen: a `deployment-watcher` eval continues the rollout
  (the scheduler then replaces the next allocs or marks the deployment successful).
`DeploymentWatcher.tick(server)` runs it in the leader's timer loop (`server.clock`).
"""

from __future__ import annotations

import logging

from yurt.state.commands import DeploymentPromote, DeploymentStatusSet, EvalUpsert
from yurt.state.fsm_jobs import spec_changed
from yurt.structs import Evaluation, evolve, generate_uuid
from yurt.structs.deployment import (
    DEPLOYMENT_STATUS_FAILED,
    DEPLOYMENT_STATUS_RUNNING,
    DESC_FAILED_ALLOCATIONS,
    DESC_PROGRESS_DEADLINE,
    Deployment,
    desc_no_rollback_target,
    desc_rollback,
    desc_rollback_noop,
)
from yurt.structs.eval import EVAL_STATUS_PENDING, TRIGGER_DEPLOYMENT_WATCHER
from yurt.structs.timefmt import parse_rfc3339_ns

log = logging.getLogger(__name__)


def deployment_eval(d: Deployment, job, now_ns: int) -> Evaluation:
    return Evaluation(
        id=generate_uuid(), namespace=d.namespace, priority=d.eval_priority or job.priority, type=job.type,
        triggered_by=TRIGGER_DEPLOYMENT_WATCHER, job_id=d.job_id, job_modify_index=job.job_modify_index,
        deployment_id=d.id, status=EVAL_STATUS_PENDING, create_time=now_ns, modify_time=now_ns,
    )


def rollback_target(snapshot, d: Deployment):
    """The newest stable version other than the deployment's."""
    for version in snapshot.job_versions(d.namespace, d.job_id):
        if version.stable and version.version != d.job_version:
            return version
    return None


def fail_command(snapshot, d: Deployment, base: str, now_ns: int) -> DeploymentStatusSet:
    """Fail `d`; with auto_revert, register the latest stable version in the same command."""
    job = snapshot.job_by_id(d.namespace, d.job_id)
    desc, rollback = base, None
    if job is not None and any(s.auto_revert for s in d.task_groups.values()):
        target = rollback_target(snapshot, d)
        if target is None:
            desc = desc_no_rollback_target(base)
        elif not spec_changed(target, job):
            desc = desc_rollback_noop(base, target.version)
        else:
            desc = desc_rollback(base, target.version)
            rollback = evolve(target, create_index=0, modify_index=0, job_modify_index=0, status="", stable=False)
    ev = deployment_eval(d, job, now_ns) if job is not None else None
    return DeploymentStatusSet(deployment_id=d.id, status=DEPLOYMENT_STATUS_FAILED, status_description=desc,
                               updated_at=now_ns, job=rollback, eval=ev)


def _healthy_canaries(snapshot, state) -> int:
    n = 0
    for alloc_id in state.placed_canaries or ():
        alloc = snapshot.alloc_by_id(alloc_id)
        if alloc is not None and alloc.deployment_status is not None and alloc.deployment_status.healthy:
            n += 1
    return n


def _missed_deadline(snapshot, d: Deployment, now_ns: int) -> bool:
    for state in d.task_groups.values():
        deadline = parse_rfc3339_ns(state.require_progress_by)
        if not state.progress_deadline or not deadline or now_ns <= deadline:
            continue
        waiting_promotion = state.desired_canaries > 0 and not state.promoted and \
            _healthy_canaries(snapshot, state) >= state.desired_canaries
        if state.healthy_allocs < max(state.desired_total, state.desired_canaries) and not waiting_promotion:
            return True
    return False


def _auto_promote(snapshot, d: Deployment) -> bool:
    if not d.requires_promotion() or not d.has_auto_promote():
        return False
    return all(_healthy_canaries(snapshot, s) >= s.desired_canaries
               for s in d.task_groups.values() if s.desired_canaries > 0 and not s.promoted)


def watch_deployments(snapshot, now_ns: int, seen: dict[str, int]) -> list:
    """The commands the watcher applies now; `seen` (deployment id -> healthy allocs) is updated."""
    out = []
    active = set()
    for d in snapshot.deployments(None):
        if d.status != DEPLOYMENT_STATUS_RUNNING:
            continue
        active.add(d.id)
        job = snapshot.job_by_id(d.namespace, d.job_id)
        if job is None or job.version != d.job_version or job.stop:
            continue  # the scheduler cancels it
        if any(s.unhealthy_allocs > 0 for s in d.task_groups.values()):
            out.append(fail_command(snapshot, d, DESC_FAILED_ALLOCATIONS, now_ns))
            continue
        if _missed_deadline(snapshot, d, now_ns):
            out.append(fail_command(snapshot, d, DESC_PROGRESS_DEADLINE, now_ns))
            continue
        healthy = sum(s.healthy_allocs for s in d.task_groups.values())
        if _auto_promote(snapshot, d):
            out.append(DeploymentPromote(deployment_id=d.id, all=True, updated_at=now_ns,
                                         eval=deployment_eval(d, job, now_ns)))
        elif healthy > seen.get(d.id, 0):
            out.append(EvalUpsert(evals=[deployment_eval(d, job, now_ns)]))
        seen[d.id] = healthy
    for gone in set(seen) - active:
        del seen[gone]
    return out


class DeploymentWatcher:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def tick(self, server) -> None:
        from yurt.state.txn import StateError

        for command in watch_deployments(server.state.snapshot(), server.now_ns(), self.seen):
            try:
                server.state.apply(command)
            except StateError as exc:  # raced with a user's change; the next tick looks again
                log.info("deployment watcher: %s: %s", type(command).__name__, exc)
