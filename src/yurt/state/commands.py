"""The typed commands the state machine applies, and their log encoding.

Every change to the server's state is one of these commands: the HTTP endpoints, the
plan applier, heartbeats and the leader loops build one, `StateStore.apply` writes it
to the log and applies it. Times travel inside commands (unix nanoseconds); the FSM
never reads the clock. Commands are msgspec Structs tagged by class name and encoded
as msgpack; their payloads are `yurt.structs` types.
"""

from typing import Any, Union

import msgspec

from yurt.structs import (
    AllocDeploymentStatus,
    Allocation,
    DesiredTransition,
    DrainStrategy,
    Evaluation,
    Job,
    Node,
    NodeEvent,
    NomadStruct,
    SchedulerConfiguration,
    TaskState,
)

from yurt.structs.deployment import Deployment, DeploymentStatusUpdate

from .scaling_events import ScalingEvent


class Command(msgspec.Struct, tag=True):
    """Base of every command; the tag is the class name."""


class JobRegister(Command):
    """Register or update a job (canonicalized by the caller), with its eval."""

    job: Job
    eval: Evaluation | None = None
    submit_time: int = 0


class JobDeregister(Command):
    """Stop a job (a new version with `Stop`) or, with `purge`, delete it."""

    namespace: str
    job_id: str
    purge: bool = False
    eval: Evaluation | None = None
    submit_time: int = 0


class JobStabilitySet(Command):
    """Mark one version of a job stable or not (deployments, `job revert`)."""

    namespace: str
    job_id: str
    version: int
    stable: bool = True


class EvalUpsert(Command):
    evals: list[Evaluation]


class EvalDelete(Command):
    """Garbage collection: delete these evals and allocations."""

    eval_ids: list[str]
    alloc_ids: list[str] = msgspec.field(default_factory=list)


class NodeRegister(Command):
    node: Node


class NodeUpdateStatus(Command):
    """`updated_at` in unix ns; the node's `StatusUpdatedAt` is stored in seconds (Nomad's unit)."""

    node_id: str
    status: str
    updated_at: int = 0
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    event: NodeEvent | None = None


class NodeUpdateEligibility(Command):
    node_id: str
    eligibility: str
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    updated_at: int = 0
    event: NodeEvent | None = None


class NodeUpdateDrain(Command):
    """Start (`drain_strategy` set) or end a drain; draining makes the node ineligible."""

    node_id: str
    drain_strategy: DrainStrategy | None = None
    mark_eligible: bool = False
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    updated_at: int = 0
    event: NodeEvent | None = None
    last_drain: dict[str, Any] | None = None  # Nomad's DrainMetadata; None keeps the stored one


class NodeDeregister(Command):
    node_ids: list[str]


class PlanApply(Command):
    """What the plan applier committed from one plan.

    `node_update`: node -> stopped allocs (desired status already set; `job` may be None).
    `node_allocation`: node -> new or updated allocs; `job` may be None on them, the FSM
    attaches the plan's `job` (or keeps the stored alloc's). `node_preemptions`: node ->
    allocs evicted, `preempted_by_allocation` set. `evals`: evals created or updated with
    the plan (follow-ups, blocked evals). `updated_at`: the commit time (ns).
    """

    eval_id: str = ""
    job: Job | None = None
    node_update: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_allocation: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    node_preemptions: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    updated_at: int = 0
    deployment: Deployment | None = None  # created or changed by the scheduler (`state/deployments.py`)
    deployment_updates: list[DeploymentStatusUpdate] = msgspec.field(default_factory=list)


class AllocUpdate(NomadStruct):
    """The fields a client reports about one of its allocations (wire names: `ID`,
    `ClientStatus`, `ClientDescription`, `TaskStates`, `DeploymentStatus`, `NetworkStatus`)."""

    id: str = ""
    client_status: str = ""
    client_description: str = ""
    task_states: dict[str, TaskState] | None = None
    deployment_status: AllocDeploymentStatus | None = None
    network_status: dict[str, Any] | None = None


class AllocClientUpdate(Command):
    allocs: list[AllocUpdate]
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    updated_at: int = 0


class AllocDesiredTransition(Command):
    """Set fields of allocations' desired transition (migrate, reschedule...)."""

    transitions: dict[str, DesiredTransition]
    evals: list[Evaluation] = msgspec.field(default_factory=list)


class SchedulerConfigSet(Command):
    config: SchedulerConfiguration


class PeriodicLaunchUpsert(Command):
    """Set the last launch time (unix ns) of a periodic job (`state/periodic_launch.py`)."""

    namespace: str
    job_id: str
    launch: int


class ScalingEventRegister(Command):
    """Record a scaling event of a job's task group (`state/scaling_events.py`)."""

    namespace: str
    job_id: str
    task_group: str
    event: ScalingEvent


class DeploymentStatusSet(Command):
    """Set a deployment's status (fail, pause, resume, watcher verdicts). With `job`, the
    job is registered too (auto-revert); `eval` continues the rollout."""

    deployment_id: str
    status: str
    status_description: str
    updated_at: int = 0
    job: Job | None = None
    eval: Evaluation | None = None


class DeploymentPromote(Command):
    """Promote the canaries of all groups (`all`) or of `groups`."""

    deployment_id: str
    all: bool = False
    groups: list[str] = msgspec.field(default_factory=list)
    updated_at: int = 0
    eval: Evaluation | None = None


class DeploymentAllocHealth(Command):
    """Mark allocs of a deployment healthy or unhealthy (manual health, the watcher)."""

    deployment_id: str
    healthy: list[str] = msgspec.field(default_factory=list)
    unhealthy: list[str] = msgspec.field(default_factory=list)
    updated_at: int = 0
    eval: Evaluation | None = None


class DeploymentDelete(Command):
    """Garbage collection of terminal deployments."""

    deployment_ids: list[str]


AnyCommand = Union[
    JobRegister,
    JobDeregister,
    JobStabilitySet,
    EvalUpsert,
    EvalDelete,
    NodeRegister,
    NodeUpdateStatus,
    NodeUpdateEligibility,
    NodeUpdateDrain,
    NodeDeregister,
    PlanApply,
    AllocClientUpdate,
    AllocDesiredTransition,
    SchedulerConfigSet,
    PeriodicLaunchUpsert,
    ScalingEventRegister,
    DeploymentStatusSet,
    DeploymentPromote,
    DeploymentAllocHealth,
    DeploymentDelete,
]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyCommand)


def encode_command(command: Command) -> bytes:
    return _encoder.encode(command)


def decode_command(data: bytes) -> Command:
    return _decoder.decode(data)
