"""The `scaling_event` table: the newest scaling events of each job's task groups (Nomad's
JobScalingEvents), written by `ScalingEventRegister` (`job scale`, the autoscaler) and read
by `GET /v1/job/:id/scale` and `job scaling-events`. Purging a job deletes its events."""

from typing import Any

import msgspec

from yurt.structs import NomadStruct, evolve

from .txn import Txn

JOB_TRACKED_SCALING_EVENTS = 20  # per task group, as Nomad keeps


class ScalingEvent(NomadStruct):
    time: int = 0  # unix nanoseconds
    count: int | None = None
    previous_count: int = 0
    message: str = ""
    error: bool = False
    meta: dict[str, Any] | None = None
    eval_id: str | None = None
    create_index: int = 0


class JobScalingEvents(NomadStruct):
    namespace: str = "default"
    job_id: str = ""
    events: dict[str, list[ScalingEvent]] = msgspec.field(default_factory=dict)  # group -> newest first
    modify_index: int = 0


def add_scaling_event(txn: Txn, namespace: str, job_id: str, group: str, event: ScalingEvent) -> None:
    existing = txn.scaling_events(namespace, job_id)
    events = dict(existing.events) if existing is not None else {}
    stored = evolve(event, create_index=txn.index)
    events[group] = [stored, *events.get(group, ())][:JOB_TRACKED_SCALING_EVENTS]
    txn.put_scaling_events(JobScalingEvents(namespace=namespace, job_id=job_id, events=events,
                                            modify_index=txn.index))
