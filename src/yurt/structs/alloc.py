"""Allocations: a task group placed on a node, and what the client reports of it."""

from typing import Any

import msgspec

from .base import NomadStruct
from .job import Job, NetworkResource, Port

ALLOC_DESIRED_RUN = "run"
ALLOC_DESIRED_STOP = "stop"
ALLOC_DESIRED_EVICT = "evict"

ALLOC_CLIENT_PENDING = "pending"
ALLOC_CLIENT_RUNNING = "running"
ALLOC_CLIENT_COMPLETE = "complete"
ALLOC_CLIENT_FAILED = "failed"
ALLOC_CLIENT_LOST = "lost"
ALLOC_CLIENT_UNKNOWN = "unknown"
CLIENT_TERMINAL_STATUSES = (ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_FAILED, ALLOC_CLIENT_LOST)

TASK_STATE_PENDING = "pending"
TASK_STATE_RUNNING = "running"
TASK_STATE_DEAD = "dead"


class AllocatedCpuResources(NomadStruct):
    cpu_shares: int = msgspec.field(default=0, name="CpuShares")
    reserved_cores: list[int] | None = None


class AllocatedMemoryResources(NomadStruct):
    memory_mb: int = 0
    memory_max_mb: int = 0


class AllocatedTaskResources(NomadStruct):
    cpu: AllocatedCpuResources = msgspec.field(default_factory=AllocatedCpuResources, name="Cpu")
    memory: AllocatedMemoryResources = msgspec.field(default_factory=AllocatedMemoryResources)
    networks: list[NetworkResource] | None = None
    devices: list[dict[str, Any]] | None = None


class AllocatedPortMapping(NomadStruct):
    label: str = ""
    value: int = 0
    to: int = 0
    host_ip: str = ""


class AllocatedSharedResources(NomadStruct):
    disk_mb: int = 0
    networks: list[NetworkResource] | None = None
    ports: list[AllocatedPortMapping] | None = None


class AllocatedResources(NomadStruct):
    tasks: dict[str, AllocatedTaskResources] = msgspec.field(default_factory=dict)
    task_lifecycles: dict[str, Any] | None = None
    shared: AllocatedSharedResources = msgspec.field(default_factory=AllocatedSharedResources)


class NodeScoreMeta(NomadStruct):
    node_id: str = ""
    scores: dict[str, float] | None = None
    norm_score: float = 0.0


class AllocMetric(NomadStruct):
    """How a placement was decided. Nomad's fields, plus `FailureReasons`: every
    reason a node was rejected, with counts, in words a person can act on."""

    nodes_evaluated: int = 0
    nodes_filtered: int = 0
    nodes_in_pool: int = 0
    nodes_available: dict[str, int] | None = None
    class_filtered: dict[str, int] | None = None
    constraint_filtered: dict[str, int] | None = None
    nodes_exhausted: int = 0
    class_exhausted: dict[str, int] | None = None
    dimension_exhausted: dict[str, int] | None = None
    quota_exhausted: list[str] | None = None
    resources_exhausted: dict[str, Any] | None = None
    scores: dict[str, float] | None = None
    score_meta_data: list[NodeScoreMeta] | None = None
    allocation_time: int = 0
    coalesced_failures: int = 0
    failure_reasons: list[str] | None = None


class TaskEvent(NomadStruct):
    type: str = ""
    time: int = 0
    message: str = ""
    display_message: str = ""
    details: dict[str, str] | None = None
    fails_task: bool = False
    restart_reason: str = ""
    setup_error: str = ""
    driver_error: str = ""
    exit_code: int = 0
    signal: int = 0
    kill_timeout: int = 0
    kill_error: str = ""
    kill_reason: str = ""
    start_delay: int = 0
    download_error: str = ""
    validation_error: str = ""
    disk_limit: int = 0
    failed_sibling: str = ""
    vault_error: str = ""
    task_signal_reason: str = ""
    task_signal: str = ""
    driver_message: str = ""
    generic_source: str = ""


class TaskState(NomadStruct):
    state: str = TASK_STATE_PENDING
    failed: bool = False
    restarts: int = 0
    last_restart: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    events: list[TaskEvent] | None = None


class RescheduleEvent(NomadStruct):
    reschedule_time: int = 0
    prev_alloc_id: str = ""
    prev_node_id: str = ""
    delay: int = 0


class RescheduleTracker(NomadStruct):
    events: list[RescheduleEvent] | None = None


class DesiredTransition(NomadStruct):
    migrate: bool | None = None
    reschedule: bool | None = None
    force_reschedule: bool | None = None
    no_shutdown_delay: bool | None = None


class AllocState(NomadStruct):
    """One recorded change of an alloc field (Nomad keeps `ClientStatus` changes made by
    the server: `unknown` while the node is disconnected, back on reconnect)."""

    field: str = ""
    value: str = ""
    time: str = ""


class AllocDeploymentStatus(NomadStruct):
    healthy: bool | None = None
    timestamp: str | None = None
    canary: bool = False
    modify_index: int = 0


class Allocation(NomadStruct):
    id: str = ""
    namespace: str = "default"
    eval_id: str = ""
    name: str = ""
    node_id: str = ""
    node_name: str = ""
    job_id: str = ""
    job: Job | None = None
    task_group: str = ""
    allocated_resources: AllocatedResources | None = None
    metrics: AllocMetric | None = None
    desired_status: str = ALLOC_DESIRED_RUN
    desired_description: str = ""
    desired_transition: DesiredTransition = msgspec.field(default_factory=DesiredTransition)
    client_status: str = ALLOC_CLIENT_PENDING
    client_description: str = ""
    task_states: dict[str, TaskState] | None = None
    deployment_id: str = ""
    deployment_status: AllocDeploymentStatus | None = None
    reschedule_tracker: RescheduleTracker | None = None
    alloc_states: list[AllocState] | None = None
    network_status: dict[str, Any] | None = None
    followup_eval_id: str = ""
    previous_allocation: str = ""
    next_allocation: str = ""
    preempted_allocations: list[str] | None = None
    preempted_by_allocation: str = ""
    create_index: int = 0
    modify_index: int = 0
    alloc_modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0
    job_version: int = 0

    @property
    def server_terminal(self) -> bool:
        return self.desired_status in (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)

    @property
    def client_terminal(self) -> bool:
        return self.client_status in CLIENT_TERMINAL_STATUSES

    @property
    def terminal(self) -> bool:
        """Terminal on the server or the client: it holds no resources."""
        return self.server_terminal or self.client_terminal

    @property
    def index(self) -> int:
        """The `[N]` of the alloc name `job.group[N]`."""
        start = self.name.rfind("[")
        return int(self.name[start + 1 : -1]) if start >= 0 else 0


# -- sharing what a million allocs repeat -------------------------------------------------
# Decoding gives every alloc's task states their own copies of the same few strings
# ("running", "Started", "Task started by client"...): ~240 of the ~850 bytes a reported
# alloc's task states take. `share_task_states` swaps them for one shared object each.

_SHARED_MAX = 4096  # distinct values kept; past that, new values are left as they are
_shared: dict[str, str] = {}


def shared_str(value: str) -> str:
    """One object for each of the few distinct values of a status or message field
    (an equal string; at most `_SHARED_MAX` values are kept)."""
    found = _shared.get(value)
    if found is not None:
        return found
    if len(_shared) < _SHARED_MAX:
        _shared[value] = value
    return value


# the event fields that are set on most reports; the error fields are rarer, and costly to
# look at on every report
_EVENT_TEXT_FIELDS = ("type", "display_message", "message", "driver_message", "restart_reason")


def share_task_states(states: dict[str, TaskState] | None) -> dict[str, TaskState] | None:
    """`states` with its status and common message strings replaced, in place, by shared
    equal ones, and its events lists sized to fit. Values, encoding and wire form are
    unchanged; call it only on freshly decoded states that nothing has read yet."""
    if not states:
        return states
    get = _shared.get
    for state in states.values():
        value = state.state
        state.state = get(value) or shared_str(value)
        events = state.events
        if not events:
            continue
        for event in events:
            for field in _EVENT_TEXT_FIELDS:
                value = getattr(event, field)
                if value:
                    setattr(event, field, get(value) or shared_str(value))
        state.events = events[:]  # a decoded list keeps spare slots; the copy has none
    return states


# what every alloc of a decoded snapshot repeats: a restore shares one object for each value
_RESTORE_SHARED_FIELDS = ("namespace", "eval_id", "node_id", "node_name", "job_id", "task_group", "desired_status",
                          "desired_description", "client_status", "client_description", "deployment_id")
_RESTORE_SHARED_STRUCTS = ("allocated_resources", "desired_transition")


def share_restored_alloc(alloc: "Allocation", seen: dict) -> "Allocation":
    """A freshly decoded alloc (from a snapshot, not yet stored) with what allocs repeat
    replaced, in place, by equal objects an earlier alloc of the same restore brought:
    namespace, node, eval, job, group and status strings, its allocated resources and
    desired transition (equal by encoding), and task-state strings as `share_task_states`.
    A live server shares these already (the scheduler hands out one object; reports go
    through `share_task_states`); without this a restored million allocs each had their
    own copies. `seen`: one dict for the whole restore."""
    for field in _RESTORE_SHARED_FIELDS:
        value = getattr(alloc, field)
        if value:
            found = seen.setdefault(value, value)
            if found is not value:
                setattr(alloc, field, found)
    for field in _RESTORE_SHARED_STRUCTS:
        value = getattr(alloc, field)
        if value is not None:
            key = (field, _msgpack_encode(value))
            found = seen.setdefault(key, value)
            if found is not value:
                setattr(alloc, field, found)
    if alloc.metrics is not None:
        _share_metrics(alloc.metrics, seen)
    share_task_states(alloc.task_states)
    return alloc


def _share_metrics(metrics: AllocMetric, seen: dict) -> AllocMetric:
    """`metrics` with its node score entries and `nodes_available` shared with equal ones
    (live, the scheduler shares these per evaluation)."""
    if metrics.nodes_available is not None:
        metrics.nodes_available = seen.setdefault(("available", _msgpack_encode(metrics.nodes_available)),
                                                  metrics.nodes_available)
    if metrics.score_meta_data:
        metrics.score_meta_data = [_share_score_meta(m, seen) for m in metrics.score_meta_data]
    return metrics


def _share_score_meta(meta: NodeScoreMeta, seen: dict) -> NodeScoreMeta:
    scores = meta.scores
    scores_key = _msgpack_encode(scores) if scores is not None else b""
    key = (meta.node_id, meta.norm_score, scores_key)
    found = seen.get(key)
    if found is not None:
        return found
    seen[key] = meta
    meta.node_id = seen.setdefault(meta.node_id, meta.node_id)
    if scores is not None:
        meta.scores = seen.setdefault(scores_key, scores)
    return meta


_msgpack_encode = msgspec.msgpack.Encoder().encode


def alloc_name(job_id: str, group: str, idx: int) -> str:
    return f"{job_id}.{group}[{idx}]"


def port_mappings(networks: list[NetworkResource] | None) -> list[AllocatedPortMapping]:
    out: list[AllocatedPortMapping] = []
    for net in networks or ():
        ports: list[Port] = [*(net.reserved_ports or ()), *(net.dynamic_ports or ())]
        for p in ports:
            out.append(AllocatedPortMapping(label=p.label, value=p.value, to=p.to, host_ip=net.ip))
    return out
