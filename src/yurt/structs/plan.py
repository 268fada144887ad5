"""Plans: what a scheduler asks the plan applier to commit, and what was committed."""

from typing import Any

import msgspec

from .alloc import Allocation
from .base import NomadStruct
from .deployment import Deployment, DeploymentStatusUpdate
from .job import Job


class DesiredUpdates(NomadStruct):
    ignore: int = 0
    place: int = 0
    migrate: int = 0
    stop: int = 0
    in_place_update: int = 0
    destructive_update: int = 0
    canary: int = 0
    preemptions: int = 0
    reschedule_now: int = 0
    reschedule_later: int = 0
    disconnect: int = 0
    reconnect: int = 0


class PlanAnnotations(NomadStruct):
    desired_tg_updates: dict[str, DesiredUpdates] = msgspec.field(
        default_factory=dict, name="DesiredTGUpdates"
    )
    preempted_allocs: list[Any] | None = None


class Plan(NomadStruct):
    """`node_update`: allocs to stop or evict (desired status already set on the copy).
    `node_allocation`: new placements and in-place updates, full objects.
    The job is carried once, not inside every alloc."""

    eval_id: str = ""
    eval_token: str = ""
    priority: int = 50
    all_at_once: bool = False
    job: Job | None = None
    node_update: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_allocation: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_preemptions: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    annotations: PlanAnnotations | None = None
    snapshot_index: int = 0
    deployment: Deployment | None = None  # created or changed by the scheduler
    deployment_updates: list[DeploymentStatusUpdate] | None = None

    def is_noop(self) -> bool:
        return not (self.node_update or self.node_allocation or self.node_preemptions
                    or self.deployment is not None or self.deployment_updates)

    def append_alloc(self, alloc: Allocation) -> None:
        self.node_allocation.setdefault(alloc.node_id, []).append(alloc)

    def append_stopped_alloc(self, alloc: Allocation, desired_desc: str, client_status: str = "") -> None:
        stopped = msgspec.structs.replace(
            alloc,
            desired_status="stop",
            desired_description=desired_desc,
            client_status=client_status or alloc.client_status,
            job=None,
        )
        self.node_update.setdefault(alloc.node_id, []).append(stopped)


    def append_preempted_alloc(self, alloc: Allocation, preempting_alloc_id: str) -> None:
        """Evict `alloc` to make room for the new alloc `preempting_alloc_id`."""
        evicted = msgspec.structs.replace(
            alloc,
            desired_status="evict",
            desired_description=f"Preempted by alloc ID {preempting_alloc_id}",
            preempted_by_allocation=preempting_alloc_id,
            job=None,
        )
        self.node_preemptions.setdefault(alloc.node_id, []).append(evicted)


class PlanResult(NomadStruct):
    """What the applier committed. `refresh_index` > 0 means part of the plan was
    rejected and the scheduler must retry against state at least that new."""

    node_update: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_allocation: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_preemptions: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    refresh_index: int = 0
    alloc_index: int = 0
    rejected_nodes: list[str] | None = None

    def full_commit(self, plan: Plan) -> tuple[bool, int, int]:
        """(all committed?, expected placements, actual placements)."""
        expected = sum(len(v) for v in plan.node_allocation.values())
        actual = sum(len(v) for v in self.node_allocation.values())
        return expected == actual and not self.rejected_nodes, expected, actual
