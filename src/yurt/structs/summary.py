"""Job summaries: per task group counts of allocations by client status."""

import msgspec

from .base import NomadStruct


class TaskGroupSummary(NomadStruct):
    queued: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0
    starting: int = 0
    lost: int = 0
    unknown: int = 0


class JobChildrenSummary(NomadStruct):
    pending: int = 0
    running: int = 0
    dead: int = 0


class JobSummary(NomadStruct):
    job_id: str = ""
    namespace: str = "default"
    summary: dict[str, TaskGroupSummary] = msgspec.field(default_factory=dict)
    children: JobChildrenSummary | None = None
    create_index: int = 0
    modify_index: int = 0
