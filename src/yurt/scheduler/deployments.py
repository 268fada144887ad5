"""Deployment rules of the cluster reconciler (Nomad's reconciler deployment logic).

`DeploymentRules` is created per reconcile with the job's latest deployment. It cancels a
deployment that belongs to an older job version or a stopped job, and per task group
with an `update` block (service jobs, max_parallel > 0) decides:
- canaries: with `canary = N` and a destructive change, N canary allocs are placed first
  (named after the allocs they will replace) and nothing else is replaced until the
  group is promoted;
- the limit of destructive updates: max_parallel minus the deployment's allocs that are
  not healthy yet (0 once one is unhealthy, or while paused, failed or canarying);
- whether brand-new placements wait (paused, failed, unpromoted canaries);
- the deployment to create (a new job version that changes something), and when every
  group is done and healthy, the update that marks it successful.
Pure: the reconciler hands it the allocs, it returns decisions.
"""

from __future__ import annotations

from yurt.structs import Allocation, Job, TaskGroup, evolve
from yurt.structs.deployment import (
    DEPLOYMENT_STATUS_CANCELLED,
    DEPLOYMENT_STATUS_FAILED,
    DEPLOYMENT_STATUS_INITIALIZING,
    DEPLOYMENT_STATUS_PAUSED,
    DEPLOYMENT_STATUS_PENDING,
    DEPLOYMENT_STATUS_RUNNING,
    DEPLOYMENT_STATUS_SUCCESSFUL,
    DESC_NEWER_JOB,
    DESC_RUNNING_AUTO_PROMOTION,
    DESC_RUNNING_NEEDS_PROMOTION,
    DESC_STOPPED_JOB,
    DESC_SUCCESSFUL,
    Deployment,
    DeploymentState,
    DeploymentStatusUpdate,
    group_update_strategy,
    new_deployment,
    with_group,
)


def is_canary(alloc: Allocation) -> bool:
    return alloc.deployment_status is not None and alloc.deployment_status.canary


def _healthy(alloc: Allocation) -> bool | None:
    return alloc.deployment_status.healthy if alloc.deployment_status is not None else None


class DeploymentRules:
    def __init__(self, job: Job | None, deployment: Deployment | None, eval_priority: int, now_ns: int) -> None:
        self.job = job
        self.now = now_ns
        self.eval_priority = eval_priority
        self.deployment = deployment
        self.updates: list[DeploymentStatusUpdate] = []
        self.changed = False  # the plan must carry self.deployment
        self.created = False
        self.complete = True
        self._cancel_unneeded()

    # --- the deployment as a whole -------------------------------------------------------
    def _cancel(self, d: Deployment, desc: str) -> None:
        if d.active:
            self.updates.append(DeploymentStatusUpdate(deployment_id=d.id, status=DEPLOYMENT_STATUS_CANCELLED,
                                                       status_description=desc, updated_at=self.now))

    def _cancel_unneeded(self) -> None:
        d, job = self.deployment, self.job
        if d is None:
            return
        if job is None or job.stop:
            self._cancel(d, DESC_STOPPED_JOB)
            self.deployment = None
            return
        if d.job_create_index != job.create_index or d.job_version != job.version:
            self._cancel(d, DESC_NEWER_JOB)
            self.deployment = None
            return
        if d.status == DEPLOYMENT_STATUS_SUCCESSFUL:
            self.deployment = None

    @property
    def paused(self) -> bool:
        d = self.deployment
        return d is not None and d.status in (DEPLOYMENT_STATUS_PAUSED, DEPLOYMENT_STATUS_PENDING,
                                              DEPLOYMENT_STATUS_INITIALIZING)

    @property
    def failed(self) -> bool:
        return self.deployment is not None and self.deployment.status == DEPLOYMENT_STATUS_FAILED

    def group_state(self, tg: TaskGroup) -> tuple[DeploymentState | None, bool]:
        """(state, exists in the deployment); None when the group does not deploy."""
        strategy = group_update_strategy(self.job, tg)
        d = self.deployment
        if d is not None and tg.name in d.task_groups:
            return d.task_groups[tg.name], True
        if strategy is None:
            return None, False
        return DeploymentState(auto_revert=strategy.auto_revert, auto_promote=strategy.auto_promote,
                               progress_deadline=strategy.progress_deadline, desired_total=tg.count), False

    # --- per group ----------------------------------------------------------------------
    def split_canaries(self, allocs: list[Allocation]) -> tuple[list[Allocation], list[Allocation], list[Allocation]]:
        """(other allocs, live canaries of the current deployment, canaries to stop)."""
        d = self.deployment
        rest, canaries, stale = [], [], []
        for alloc in allocs:
            if not is_canary(alloc) or (alloc.terminal and d is not None and alloc.deployment_id == d.id):
                rest.append(alloc)
            elif d is not None and alloc.deployment_id == d.id:
                canaries.append(alloc)
            elif not alloc.terminal:
                stale.append(alloc)
            else:
                rest.append(alloc)
        return rest, canaries, stale

    def limit(self, tg: TaskGroup, state: DeploymentState, live: list[Allocation], destructive: int) -> int:
        """How many destructive updates may start now (Nomad's computeLimit)."""
        if not destructive:
            return tg.count
        if self.paused or self.failed:
            return 0
        if state.desired_canaries > 0 and not state.promoted:
            return 0
        limit = group_update_strategy(self.job, tg).max_parallel
        d = self.deployment
        if d is not None:
            for alloc in live:
                if alloc.deployment_id != d.id or alloc.terminal:
                    continue
                health = _healthy(alloc)
                if health is False:
                    return 0
                if health is not True:
                    limit -= 1
        return max(limit, 0)

    def place_ready(self, state: DeploymentState) -> bool:
        return not self.paused and not self.failed and not (state.desired_canaries > 0 and not state.promoted)

    def attach(self, tg: TaskGroup, state: DeploymentState, existing: bool, had_running: bool,
               updating_spec: bool) -> None:
        """Create the deployment (or add the group) when the group starts a rollout, or
        record a changed group state."""
        if existing:
            if self.deployment.task_groups.get(tg.name) != state:
                self.deployment = with_group(self.deployment, tg.name, state)
                self.changed = True
            return
        if state.desired_total == 0 or (had_running and not updating_spec):
            return
        if self.deployment is None:
            self.deployment = new_deployment(self.job, self.eval_priority, self.now)
            self.created = True
        self.deployment = with_group(self.deployment, tg.name, state)
        self.changed = True

    def group_done(self, tg: TaskGroup, pending_work: bool) -> None:
        """Record whether the group still has work or unhealthy allocs (deployment complete?)."""
        if pending_work:
            self.complete = False
            return
        d = self.deployment
        state = d.task_groups.get(tg.name) if d is not None else None
        if state is None:
            return
        if state.healthy_allocs < max(state.desired_total, state.desired_canaries) or (
                state.desired_canaries > 0 and not state.promoted):
            self.complete = False

    def finish(self) -> None:
        """After every group: describe a new deployment waiting for promotion; mark a
        finished one successful."""
        d = self.deployment
        if d is None:
            return
        if self.created and d.requires_promotion():
            desc = DESC_RUNNING_AUTO_PROMOTION if d.has_auto_promote() else DESC_RUNNING_NEEDS_PROMOTION
            self.deployment = evolve(d, status_description=desc)
        if self.complete and d.status == DEPLOYMENT_STATUS_RUNNING and not self.created:
            self.updates.append(DeploymentStatusUpdate(deployment_id=d.id, status=DEPLOYMENT_STATUS_SUCCESSFUL,
                                                       status_description=DESC_SUCCESSFUL, updated_at=self.now))


def had_running(job: Job, allocs: list[Allocation]) -> bool:
    """Some alloc of the group already ran this job version (no new deployment for, e.g.,
    a lost alloc's replacement)."""
    for alloc in allocs:
        if alloc.job_version == job.version and (alloc.job is None or alloc.job.create_index == job.create_index):
            return True
    return False
