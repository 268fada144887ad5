"""The typed commands the state machine applies, and their log encoding.

Every change to the server's state is one of these commands: the HTTP endpoints, the
plan applier, heartbeats and the leader loops build one, `StateStore.apply` writes it
to the log and applies it. Times travel inside commands (unix nanoseconds); the FSM
never reads the clock. Commands are msgspec Structs tagged by class name and encoded
as msgpack; their payloads are `yurt.structs` types.

A `PlanApply` that places allocs is logged as a `PackedPlanApply` (issue 7): the allocs of
one plan are copies of a template per task group, so each is written as its template's
number plus the fields that differ per placement (`_ALLOC_VARIES`, and of its `metrics`
`_METRIC_VARIES`); `decode_command` turns it back into the same `PlanApply`. Logs written
before hold plain `PlanApply` entries, which decode as ever.
"""

from typing import Any, Union

import msgspec
from msgspec.structs import replace as _replace

from yurt.structs import (
    AllocDeploymentStatus,
    AllocMetric,
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
from yurt.structs.alloc import NodeScoreMeta

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


# The fields of a placed alloc (and of its `metrics`) that differ from one placement of a
# plan to the next; every other field is its template's (`PackedPlanApply`).
_ALLOC_VARIES = ("id", "name", "node_id", "node_name", "previous_allocation", "create_time", "modify_time")
_METRIC_VARIES = ("nodes_evaluated", "nodes_filtered", "nodes_in_pool", "nodes_exhausted", "score_meta_data",
                  "allocation_time", "coalesced_failures")
# what a template holds in those fields (each alloc's own values are in its record)
_ALLOC_BLANK = {"id": "", "name": "", "node_id": "", "node_name": "", "previous_allocation": "", "create_time": 0,
                "modify_time": 0, "metrics": None}
_METRIC_BLANK = {"nodes_evaluated": 0, "nodes_filtered": 0, "nodes_in_pool": 0, "nodes_exhausted": 0,
                 "score_meta_data": None, "allocation_time": 0, "coalesced_failures": 0}
# A placed alloc: (template, metrics template or -1 for no metrics, *_ALLOC_VARIES, *_METRIC_VARIES)
PlacedRecord = tuple[int, int, str, str, str, str, str, int, int, int, int, int, int, list[NodeScoreMeta] | None,
                     int, int]
_NO_METRICS = tuple(_METRIC_BLANK.values())
assert set(_ALLOC_BLANK) == {*_ALLOC_VARIES, "metrics"} and tuple(_METRIC_BLANK) == _METRIC_VARIES
_TEMPLATES_TRIED = 4  # templates compared per alloc (the last matched first, then the newest)
_TEMPLATES_FREE = 8  # more templates than this, and more than one per `_TEMPLATE_RATIO` allocs: not packed
_TEMPLATE_RATIO = 4


class PlacedAllocs(msgspec.Struct, array_like=True, gc=False):
    """`PlanApply.node_allocation` as logged: `counts[i]` records for node `nodes[i]`, in order.
    A record's alloc is `templates[t]` with its own `_ALLOC_VARIES` fields and `metrics`
    (`metric_templates[m]` with its own `_METRIC_VARIES` fields; None when m < 0)."""

    templates: list[Allocation]
    metric_templates: list[AllocMetric]
    nodes: list[str]
    counts: list[int]
    records: list[PlacedRecord]


class PackedPlanApply(Command):
    """How the log stores a `PlanApply` with placements (see the module's doc): its fields,
    with `placed` for `node_allocation`. Never applied: `decode_command` unpacks it."""

    eval_id: str = ""
    job: Job | None = None
    node_update: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    placed: PlacedAllocs | None = None
    node_preemptions: dict[str, list[Allocation]] = msgspec.field(default_factory=dict)
    evals: list[Evaluation] = msgspec.field(default_factory=list)
    updated_at: int = 0
    deployment: Deployment | None = None
    deployment_updates: list[DeploymentStatusUpdate] = msgspec.field(default_factory=list)


def _template_number(blank, templates: list, last: int, seen: int) -> int:
    """The number of the template equal to `blank` (tried: `last`, then the newest few); else
    `blank` becomes a new one. -1 when that makes too many templates for `seen` allocs."""
    if last >= 0 and templates[last] == blank:
        return last
    for k in range(len(templates) - 1, max(len(templates) - 1 - _TEMPLATES_TRIED, -1), -1):
        if k != last and templates[k] == blank:
            return k
    k = len(templates)
    templates.append(blank)
    return -1 if k >= _TEMPLATES_FREE and k * _TEMPLATE_RATIO > seen else k


def pack_placed(node_allocation: dict[str, list[Allocation]]) -> PlacedAllocs | None:
    """`node_allocation` as `PlacedAllocs`; None when its allocs are too unlike each other
    to gain from it (then the command is logged as it is). Fields equal (==) to the
    template's are taken as the template's."""
    templates: list[Allocation] = []
    metric_templates: list[AllocMetric] = []
    records: list[tuple] = []
    append = records.append
    last = last_m = -1
    alloc_blank, metric_blank = _ALLOC_BLANK, _METRIC_BLANK
    for allocs in node_allocation.values():
        for a in allocs:
            k = last = _template_number(_replace(a, **alloc_blank), templates, last, len(records))
            if k < 0:
                return None
            m = a.metrics
            if m is None:
                append((k, -1, a.id, a.name, a.node_id, a.node_name, a.previous_allocation, a.create_time,
                        a.modify_time, *_NO_METRICS))
                continue
            mk = last_m = _template_number(_replace(m, **metric_blank), metric_templates, last_m, len(records))
            if mk < 0:
                return None
            append((k, mk, a.id, a.name, a.node_id, a.node_name, a.previous_allocation, a.create_time, a.modify_time,
                    m.nodes_evaluated, m.nodes_filtered, m.nodes_in_pool, m.nodes_exhausted, m.score_meta_data,
                    m.allocation_time, m.coalesced_failures))
    return PlacedAllocs(templates, metric_templates, list(node_allocation), [len(v) for v in node_allocation.values()],
                        records)


def unpack_placed(placed: PlacedAllocs) -> dict[str, list[Allocation]]:
    """The `node_allocation` that `pack_placed` packed."""
    templates, metric_templates, records = placed.templates, placed.metric_templates, placed.records
    out: dict[str, list[Allocation]] = {}
    position = 0
    for node_id, count in zip(placed.nodes, placed.counts):
        allocs = out[node_id] = []
        for k, mk, id_, name, node, node_name, previous, created, modified, evaluated, filtered, in_pool, exhausted, \
                scores, allocation_time, coalesced in records[position:position + count]:
            metrics = None if mk < 0 else _replace(
                metric_templates[mk], nodes_evaluated=evaluated, nodes_filtered=filtered, nodes_in_pool=in_pool,
                nodes_exhausted=exhausted, score_meta_data=scores, allocation_time=allocation_time,
                coalesced_failures=coalesced)
            allocs.append(_replace(templates[k], id=id_, name=name, node_id=node, node_name=node_name,
                                   previous_allocation=previous, create_time=created, modify_time=modified,
                                   metrics=metrics))
        position += count
    if position != len(records):
        raise ValueError(f"packed plan: {len(records)} allocs recorded, {position} counted by node")
    return out


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
    PackedPlanApply,
]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyCommand)


def encode_command(command: Command) -> bytes:
    if type(command) is PlanApply and command.node_allocation:
        placed = pack_placed(command.node_allocation)
        if placed is not None:
            return _encoder.encode(PackedPlanApply(
                eval_id=command.eval_id, job=command.job, node_update=command.node_update, placed=placed,
                node_preemptions=command.node_preemptions, evals=command.evals, updated_at=command.updated_at,
                deployment=command.deployment, deployment_updates=command.deployment_updates))
    return _encoder.encode(command)


def decode_command(data: bytes) -> Command:
    command = _decoder.decode(data)
    if type(command) is PackedPlanApply:
        return PlanApply(
            eval_id=command.eval_id, job=command.job, node_update=command.node_update,
            node_allocation=unpack_placed(command.placed) if command.placed is not None else {},
            node_preemptions=command.node_preemptions, evals=command.evals, updated_at=command.updated_at,
            deployment=command.deployment, deployment_updates=command.deployment_updates)
    return command
