"""`job plan`: run the scheduler on the submitted job without committing anything."""

import asyncio
from typing import Any

from yurt.structs import (
    EVAL_STATUS_PENDING,
    TRIGGER_JOB_REGISTER,
    Evaluation,
    Job,
    Plan,
    PlanResult,
    evolve,
    generate_uuid,
    to_wire,
)

from .job_diff import job_diff, spec_changed
from .jobs import canonical_valid_job


class _PlannedJobSnapshot:
    """The committed snapshot, except that the planned job replaces the stored one."""

    def __init__(self, snapshot, job: Job):
        self._snapshot = snapshot
        self._job = job

    def __getattr__(self, name: str):
        return getattr(self._snapshot, name)

    def job_by_id(self, namespace: str, job_id: str):
        if (namespace, job_id) == (self._job.namespace, self._job.id):
            return self._job
        return self._snapshot.job_by_id(namespace, job_id)


class RecordingPlanner:
    """Accepts every plan as if committed, and remembers what the scheduler did."""

    def __init__(self, index: int):
        self.index = index
        self.plans: list[Plan] = []
        self.created: list[Evaluation] = []
        self.final_eval: Evaluation | None = None

    def submit_plan(self, plan: Plan):
        self.plans.append(plan)
        return PlanResult(node_update=plan.node_update, node_allocation=plan.node_allocation,
                          node_preemptions=plan.node_preemptions, alloc_index=self.index), None

    def update_eval(self, ev: Evaluation) -> None:
        self.final_eval = ev

    def create_eval(self, ev: Evaluation) -> None:
        self.created.append(ev)

    def reblock_eval(self, ev: Evaluation) -> None:
        self.final_eval = ev


def _planned_job(existing: Job | None, job: Job, index: int) -> Job:
    if existing is not None and not spec_changed(existing, job):
        return existing
    return evolve(
        job,
        version=existing.version + 1 if existing else 0,
        create_index=existing.create_index if existing else index + 1,
        modify_index=index + 1,
        job_modify_index=index + 1,
        status=existing.status if existing else "pending",
    )


async def plan_job(server, job: Job, with_diff: bool = False) -> dict[str, Any]:
    from yurt.scheduler import new_scheduler

    job = canonical_valid_job(job)
    snapshot = server.state.snapshot()
    existing = snapshot.job_by_id(job.namespace, job.id)
    planned = _planned_job(existing, job, snapshot.index)
    ev = Evaluation(id=generate_uuid(), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by=TRIGGER_JOB_REGISTER, job_id=job.id, job_modify_index=planned.job_modify_index,
                    status=EVAL_STATUS_PENDING, annotate_plan=True)
    planner = RecordingPlanner(snapshot.index)
    scheduler = new_scheduler(job.type, _PlannedJobSnapshot(snapshot, planned), planner,
                              now_ns=server.now_ns(), config=snapshot.scheduler_config())
    await asyncio.to_thread(scheduler.process, ev)
    plans = planner.plans or [p for p in [getattr(scheduler, "last_plan", None)] if p is not None]
    annotations = next((p.annotations for p in reversed(plans) if p.annotations), None)
    final = planner.final_eval
    desired = to_wire(annotations.desired_tg_updates) if annotations else None
    wire_annotations = to_wire(annotations)
    if annotations is not None and annotations.preempted_allocs:
        from yurt.http.wire import alloc_list_stub

        wire_annotations["PreemptedAllocs"] = [alloc_list_stub(a) for a in annotations.preempted_allocs]
    return {
        "Annotations": wire_annotations,
        "FailedTGAllocs": to_wire(final.failed_tg_allocs) if final and final.failed_tg_allocs else None,
        "JobModifyIndex": existing.job_modify_index if existing else 0,
        "CreatedEvals": [to_wire(e) for e in planner.created] or None,
        "Diff": job_diff(existing, job, desired) if with_diff else None,
        "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
        "Warnings": "",
        "Index": snapshot.index,
    }
