"""Deployments: the rollout of one job version under the group's `update` block (Nomad's
`structs.Deployment`). Wire names are Nomad's; `RequireProgressBy` is a Go time string."""

import msgspec

from .base import NomadStruct, evolve
from .ids import generate_uuid
from .job import Job, TaskGroup, UpdateStrategy
from .timefmt import GO_ZERO_TIME

DEPLOYMENT_STATUS_RUNNING = "running"
DEPLOYMENT_STATUS_PAUSED = "paused"
DEPLOYMENT_STATUS_FAILED = "failed"
DEPLOYMENT_STATUS_SUCCESSFUL = "successful"
DEPLOYMENT_STATUS_CANCELLED = "cancelled"
DEPLOYMENT_STATUS_INITIALIZING = "initializing"
DEPLOYMENT_STATUS_PENDING = "pending"
DEPLOYMENT_STATUS_BLOCKED = "blocked"
DEPLOYMENT_STATUS_UNBLOCKING = "unblocking"
DEPLOYMENT_ACTIVE_STATUSES = (
    DEPLOYMENT_STATUS_RUNNING, DEPLOYMENT_STATUS_PAUSED, DEPLOYMENT_STATUS_BLOCKED,
    DEPLOYMENT_STATUS_UNBLOCKING, DEPLOYMENT_STATUS_INITIALIZING, DEPLOYMENT_STATUS_PENDING,
)

DESC_RUNNING = "Deployment is running"
DESC_RUNNING_NEEDS_PROMOTION = "Deployment is running but requires manual promotion"
DESC_RUNNING_AUTO_PROMOTION = "Deployment is running pending automatic promotion"
DESC_PAUSED = "Deployment is paused"
DESC_SUCCESSFUL = "Deployment completed successfully"
DESC_STOPPED_JOB = "Cancelled because job is stopped"
DESC_NEWER_JOB = "Cancelled due to newer version of job"
DESC_FAILED_ALLOCATIONS = "Failed due to unhealthy allocations"
DESC_PROGRESS_DEADLINE = "Failed due to progress deadline"
DESC_FAILED_BY_USER = "Deployment marked as failed"


def desc_rollback(base: str, version: int) -> str:
    return f"{base} - rolling back to job version {version}"


def desc_rollback_noop(base: str, version: int) -> str:
    return f"{base} - not rolling back to stable job version {version} as current job has same specification"


def desc_no_rollback_target(base: str) -> str:
    return f"{base} - no stable job version to auto revert to"


class DeploymentState(NomadStruct):
    auto_revert: bool = False
    auto_promote: bool = False
    progress_deadline: int = 0
    require_progress_by: str = GO_ZERO_TIME
    promoted: bool = False
    placed_canaries: list[str] | None = None
    desired_canaries: int = 0
    desired_total: int = 0
    placed_allocs: int = 0
    healthy_allocs: int = 0
    unhealthy_allocs: int = 0


class Deployment(NomadStruct):
    id: str = ""
    namespace: str = "default"
    job_id: str = ""
    job_version: int = 0
    job_modify_index: int = 0
    job_spec_modify_index: int = 0
    job_create_index: int = 0
    is_multiregion: bool = False
    task_groups: dict[str, DeploymentState] = msgspec.field(default_factory=dict)
    status: str = DEPLOYMENT_STATUS_RUNNING
    status_description: str = DESC_RUNNING
    eval_priority: int = 0
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0

    @property
    def active(self) -> bool:
        return self.status in DEPLOYMENT_ACTIVE_STATUSES

    def requires_promotion(self) -> bool:
        if self.status != DEPLOYMENT_STATUS_RUNNING:
            return False
        return any(s.desired_canaries > 0 and not s.promoted for s in self.task_groups.values())

    def has_auto_promote(self) -> bool:
        if self.status != DEPLOYMENT_STATUS_RUNNING or not self.task_groups:
            return False
        return all(s.auto_promote for s in self.task_groups.values() if s.desired_canaries > 0)


class DeploymentStatusUpdate(NomadStruct):
    deployment_id: str = ""
    status: str = ""
    status_description: str = ""
    updated_at: int = 0


def new_deployment(job: Job, eval_priority: int, now_ns: int) -> Deployment:
    return Deployment(
        id=generate_uuid(), namespace=job.namespace, job_id=job.id, job_version=job.version,
        job_modify_index=job.modify_index, job_spec_modify_index=job.job_modify_index,
        job_create_index=job.create_index, is_multiregion=bool(job.multiregion),
        eval_priority=eval_priority, create_time=now_ns, modify_time=now_ns,
    )


def group_update_strategy(job: Job, tg: TaskGroup) -> UpdateStrategy | None:
    """The group's update block when it asks for deployments (service jobs, max_parallel > 0)."""
    if job.type != "service":
        return None
    strategy = tg.update
    if strategy is None or strategy.max_parallel <= 0:
        return None
    return strategy


def with_group(d: Deployment, name: str, state: DeploymentState) -> Deployment:
    return evolve(d, task_groups={**d.task_groups, name: state})
