"""A plan made on an older snapshot may update allocs the garbage collector deleted
meanwhile (the job GC deletes a dead job's allocs, then purges the job). The applier drops
those updates (it does not re-insert a deleted alloc, and does not refuse the whole plan)
and commits the rest; the scheduler refreshes and its eval completes."""

from __future__ import annotations

from yurt.scheduler import new_scheduler
from yurt.server.plan_apply import PlanApplier, evaluate_plan
from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    EvalDelete,
    JobRegister,
    NodeRegister,
    PlanApply,
    StateStore,
)
from yurt.structs import Evaluation, Plan, evolve, generate_uuid
from yurt.testing.mock import mock_alloc, mock_group, mock_job, mock_node

SECOND = 1_000_000_000


class _Planner:
    """The worker's side: plans go to the applier; `before_first_plan` runs once, between
    the scheduler's snapshot and the first commit (the GC's writes)."""

    def __init__(self, store, applier, before_first_plan) -> None:
        self.store, self.applier, self.before = store, applier, before_first_plan
        self.results, self.evals = [], []

    def submit_plan(self, plan):
        if self.before is not None:
            self.before()
            self.before = None
        result = self.applier.apply(plan)
        self.results.append(result)
        return result, (self.store.snapshot() if result.refresh_index else None)

    def update_eval(self, ev):
        self.evals.append(ev)

    create_eval = reblock_eval = update_eval


def _eval(job, trigger: str) -> Evaluation:
    return Evaluation(id=generate_uuid(), namespace=job.namespace, priority=job.priority, type=job.type,
                      triggered_by=trigger, job_id=job.id, status="pending")


def test_update_of_an_alloc_deleted_meanwhile_is_dropped_and_the_rest_commits():
    store = StateStore.open(None)
    node = mock_node()
    store.apply(NodeRegister(node=node))
    applier = PlanApplier(store, now_ns=lambda: 10 * SECOND)
    job = mock_job(id="web", task_groups=[mock_group(count=2)])
    store.apply(JobRegister(job=job))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    first = _Planner(store, applier, None)
    new_scheduler(job.type, store.snapshot(), first, now_ns=10 * SECOND).process(_eval(job, "job-register"))
    placed = sorted(store.snapshot().allocs_by_job(job.namespace, job.id), key=lambda a: a.name)
    assert len(placed) == 2
    failed, kept = placed
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=failed.id, client_status="failed")],
                                  updated_at=11 * SECOND))
    # one more wanted: the eval's plan places one and marks the failed alloc for a later
    # reschedule (an update of it, with its follow-up eval)
    store.apply(JobRegister(job=evolve(job, task_groups=[mock_group(count=3)])))
    old_snapshot = store.snapshot()

    def garbage_collect() -> None:
        store.apply(EvalDelete(eval_ids=[], alloc_ids=[failed.id]))

    planner = _Planner(store, applier, garbage_collect)
    ev = _eval(job, "job-register")
    new_scheduler(job.type, old_snapshot, planner, now_ns=12 * SECOND).process(ev)

    first_plan = planner.results[0]
    assert failed.id not in {a.id for allocs in first_plan.node_allocation.values() for a in allocs}
    assert first_plan.node_allocation, "the placement of the same plan committed"
    after = store.snapshot()
    assert after.alloc_by_id(failed.id) is None, "the deleted alloc was not re-inserted"
    live = [a for a in after.allocs_by_job(job.namespace, job.id) if not a.terminal]
    assert kept.id in {a.id for a in live} and len(live) == 3
    assert planner.evals[-1].id == ev.id and planner.evals[-1].status == "complete"


def test_evaluate_plan_drops_updates_of_deleted_allocs_and_keeps_the_rest():
    """On a state without the allocs (GC'd), `evaluate_plan` keeps new placements and drops
    updates of the allocs that are gone; the updates of allocs still there stay."""
    store = StateStore.open(None)
    node = mock_node()
    store.apply(NodeRegister(node=node))
    job = mock_job(id="web")
    store.apply(JobRegister(job=job))

    present, gone = mock_alloc(job, node, 0), mock_alloc(job, node, 1)
    store.apply(PlanApply(eval_id="e0", job=job, node_allocation={node.id: [present, gone]}))
    snap = store.snapshot()
    stored_present, stored_gone = snap.alloc_by_id(present.id), snap.alloc_by_id(gone.id)
    store.apply(EvalDelete(eval_ids=[], alloc_ids=[gone.id]))
    plan = Plan(eval_id="e1", job=job)
    plan.append_alloc(evolve(stored_gone, job=None, client_status="failed", followup_eval_id="f1"))
    plan.append_alloc(evolve(stored_present, job=None, modify_time=5))
    new = mock_alloc(job, node, 2)
    plan.append_alloc(new)
    result, verdicts = evaluate_plan(store.snapshot(), plan)
    assert all(v.fits for v in verdicts)
    assert [a.id for a in result.node_allocation[node.id]] == [present.id, new.id]
