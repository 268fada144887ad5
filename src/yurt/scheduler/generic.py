"""The generic scheduler for service and batch jobs (Nomad's GenericScheduler).

`process(eval)`: reconcile the job's allocs, build a plan, submit it; when the plan
applier commits only part of it, retry against the newer snapshot it returns (5
attempts for service jobs, 2 for batch). Placement failures are reported in
`eval.failed_tg_allocs` and a blocked eval is created so the job is retried when
the cluster changes. The eval always ends through `planner.update_eval`.
"""

from __future__ import annotations

from collections import Counter

from yurt.structs import (
    Allocation,
    AllocMetric,
    Evaluation,
    Job,
    Plan,
    PlanAnnotations,
    SchedulerConfiguration,
    TaskGroup,
    evolve,
    generate_uuid,
)
from yurt.structs.eval import (
    EVAL_STATUS_BLOCKED,
    EVAL_STATUS_COMPLETE,
    EVAL_STATUS_FAILED,
    TRIGGER_MAX_PLANS,
    TRIGGER_QUEUED_ALLOCS,
)
from yurt.structs.operator import SCHEDULER_ALGORITHM_BINPACK

from .placement import PlanBuilder, eval_seed, paused_gc
from .planner import Planner, StateSnapshot
from .preempt import preemption_enabled
from .reconcile import UPDATE_DESTRUCTIVE, UPDATE_INPLACE, Reconciler, is_node_tainted
from .update import tasks_updated

SERVICE_MAX_ATTEMPTS = 5
BATCH_MAX_ATTEMPTS = 2
BLOCKED_EVAL_FAILED_PLACEMENTS = "created to place remaining allocations"
BLOCKED_EVAL_MAX_PLANS = "created due to placement conflicts"


class GenericScheduler:
    def __init__(
        self,
        snapshot: StateSnapshot,
        planner: Planner,
        now_ns: int,
        config: SchedulerConfiguration | None = None,
        batch: bool = False,
    ) -> None:
        self.snapshot = snapshot
        self.planner = planner
        self.now = now_ns
        self.config = config or SchedulerConfiguration()
        self.batch = batch
        self.eval: Evaluation | None = None
        self.blocked: Evaluation | None = None
        self.followups_created = False
        self.failed_tg_allocs: dict[str, AllocMetric] = {}
        self.queued: dict[str, int] = {}
        self.class_eligibility: dict[str, bool] = {}
        self.escaped = False
        self.refresh_index = 0
        self.last_plan: Plan | None = None
        self.nodes_scored = 0
        self.placements = 0
        self._update_kinds: dict[tuple, str] = {}  # (old version..., new version..., group) -> kind
        self.max_attempts = BATCH_MAX_ATTEMPTS if batch else SERVICE_MAX_ATTEMPTS
        self.progress = False
        self.blocks_on_failure = True
        self.deployment = None  # the job's deployment after the last reconcile

    def process(self, ev: Evaluation) -> None:
        # No collection while the eval's objects are alive: what is due runs once they are
        # freed (a collection at the end of the reconcile/placement walked them all).
        with paused_gc():
            self._process(ev)

    def _process(self, ev: Evaluation) -> None:
        self.eval = ev
        limit = self.max_attempts
        attempts = 0
        while attempts < limit:
            self.progress = False
            if self._attempt():
                self._finish(EVAL_STATUS_COMPLETE, "")
                return
            # Nomad's retryMax: a partial commit that changed something resets the count.
            attempts = 0 if self.progress else attempts + 1
        if self.blocked is None:
            self._create_blocked_eval(plan_failure=True)
        self._finish(EVAL_STATUS_FAILED, f"maximum attempts reached ({limit})")

    # --- one attempt -----------------------------------------------------------------
    def _attempt(self) -> bool:
        ev = self.eval
        snap = self.snapshot
        job = snap.job_by_id(ev.namespace, ev.job_id)
        allocs = snap.allocs_by_job(ev.namespace, ev.job_id)
        plan = Plan(
            eval_id=ev.id,
            priority=ev.priority,
            job=job,
            all_at_once=job.all_at_once if job is not None else False,
            snapshot_index=getattr(snap, "index", 0),
        )
        self.last_plan = plan
        self.failed_tg_allocs = {}
        self.queued = {tg.name: 0 for tg in (job.task_groups or ())} if job is not None and not job.stop else {}
        followups, builder = self._compute(plan, job, allocs)
        if self.failed_tg_allocs and self.blocks_on_failure and self.blocked is None and ev.status != EVAL_STATUS_BLOCKED:
            self._create_blocked_eval(plan_failure=False)
        if followups and not self.followups_created:
            for follow in followups:
                self.planner.create_eval(follow)
            self.followups_created = True
        if plan.is_noop():
            return True
        committed, new_snapshot = self.planner.submit_plan(plan)
        full, _expected, _actual = committed.full_commit(plan)
        if builder is not None:
            self._count_committed(builder.placed_ids, committed, full)
        self.progress = bool(committed.node_allocation or committed.node_update or committed.node_preemptions)
        if not full:
            if new_snapshot is not None:
                self.snapshot = new_snapshot
            self.refresh_index = committed.refresh_index or self.refresh_index + 1
            return False
        return True

    def _count_committed(self, placed: dict[str, str], committed, full: bool) -> None:
        """Committed placements leave the queue. A full commit committed every placement
        (counted per group at C speed); else look each committed alloc up."""
        queued = self.queued
        if full:
            for tg, n in Counter(placed.values()).items():
                queued[tg] = queued.get(tg, 0) - n
            return
        for allocs_on_node in committed.node_allocation.values():
            for alloc in allocs_on_node:
                tg = placed.get(alloc.id)
                if tg is not None:
                    queued[tg] = queued.get(tg, 0) - 1

    def _compute(self, plan: Plan, job: Job | None, allocs: list[Allocation]):
        """Reconcile and fill the plan; returns (follow-up evals, builder or None)."""
        ev = self.eval
        latest = getattr(self.snapshot, "latest_deployment_by_job", None)
        deployment = latest(ev.namespace, ev.job_id) if latest is not None and not self.batch else None
        result = Reconciler(
            job, allocs, self._tainted_nodes(allocs), ev.id, ev.priority, self.now, self._update_kind, deployment
        ).compute()
        plan.annotations = PlanAnnotations(desired_tg_updates=result.desired_tg_updates)
        self.deployment = result.deployment
        plan.deployment = result.deployment if result.deployment_changed else None
        plan.deployment_updates = result.deployment_updates or None
        if job is None:
            for req in result.stop:
                plan.append_stopped_alloc(req.alloc, req.description, req.client_status)
            return result.followup_evals, None
        return result.followup_evals, self._build(plan, job, result, allocs)

    def _new_builder(self, plan: Plan, job: Job) -> PlanBuilder:
        algorithm = self.config.scheduler_algorithm or SCHEDULER_ALGORITHM_BINPACK
        seed = eval_seed(self.eval.id, self.refresh_index)
        preempt = preemption_enabled(self.config, job.type)
        builder = PlanBuilder(self.snapshot, plan, job, self.eval.id, self.now, algorithm, seed, preempt)
        builder.memory_oversubscription = self.config.memory_oversubscription_enabled
        return builder

    def _collect(self, builder: PlanBuilder) -> None:
        """Take the builder's failures and class eligibility into the eval's bookkeeping."""
        self.failed_tg_allocs = builder.failed
        self.nodes_scored = builder.nodes_scored
        self.placements = len(builder.placed_ids)
        for placer in builder.placers.values():
            for cls, eligible in placer.checker.class_eligibility().items():
                self.class_eligibility[cls] = self.class_eligibility.get(cls, False) or eligible
            self.escaped = self.escaped or placer.checker.has_escaped

    def _build(self, plan: Plan, job: Job, result, allocs: list[Allocation] | None = None) -> PlanBuilder:
        """`allocs`: the job's allocs in the snapshot, as `_attempt` listed them."""
        builder = self._new_builder(plan, job)
        builder.tracker.job_allocs = allocs
        builder.apply_stops(result)
        builder.apply_attribute_updates(result)
        destructive = builder.apply_inplace(result)
        self._join_deployment(plan, result, destructive)
        requests = destructive + result.place
        for req in requests:
            self.queued[req.task_group.name] = self.queued.get(req.task_group.name, 0) + 1
        builder.place_all(requests)
        self._collect(builder)
        return builder

    @staticmethod
    def _join_deployment(plan: Plan, result, destructive) -> None:
        """In-place updated allocs (and their destructive fallbacks) join the deployment; their
        health is measured again."""
        d = result.deployment
        if d is None:
            return
        for req in destructive:
            if req.task_group.name in d.task_groups:
                req.deployment_id = d.id
        inplace = {a.id for a in result.inplace if a.task_group in d.task_groups}
        for node_id, allocs in plan.node_allocation.items():
            plan.node_allocation[node_id] = [
                evolve(a, deployment_id=d.id, deployment_status=None) if a.id in inplace else a for a in allocs
            ]

    def _update_kind(self, alloc: Allocation, job: Job, tg: TaskGroup) -> str:
        """In place or destructive: compare with the job version the alloc runs, which the
        state may keep in the alloc or only in its job history."""
        old = alloc.job
        if old is None:
            lookup = getattr(self.snapshot, "job_version", None)
            old = lookup(alloc.namespace, alloc.job_id, alloc.job_version) if lookup else None
        if old is None or old.lookup_task_group(tg.name) is None:
            return UPDATE_DESTRUCTIVE
        key = (old.version, old.job_modify_index, job.version, job.job_modify_index, tg.name)
        kind = self._update_kinds.get(key)
        if kind is None:
            kind = UPDATE_DESTRUCTIVE if tasks_updated(old, job, tg.name) else UPDATE_INPLACE
            self._update_kinds[key] = kind
        return kind

    def _tainted_nodes(self, allocs) -> dict:
        out = {}
        seen: set[str] = set()
        for alloc in allocs:
            if alloc.node_id in seen or alloc.terminal:
                continue
            seen.add(alloc.node_id)
            node = self.snapshot.node_by_id(alloc.node_id)
            if is_node_tainted(node):
                out[alloc.node_id] = node
        return out

    # --- eval bookkeeping --------------------------------------------------------------
    def _create_blocked_eval(self, plan_failure: bool) -> None:
        ev = self.eval
        self.blocked = Evaluation(
            id=generate_uuid(),
            namespace=ev.namespace,
            priority=ev.priority,
            type=ev.type,
            triggered_by=TRIGGER_MAX_PLANS if plan_failure else TRIGGER_QUEUED_ALLOCS,
            job_id=ev.job_id,
            job_modify_index=ev.job_modify_index,
            status=EVAL_STATUS_BLOCKED,
            status_description=BLOCKED_EVAL_MAX_PLANS if plan_failure else BLOCKED_EVAL_FAILED_PLACEMENTS,
            previous_eval=ev.id,
            failed_tg_allocs=dict(self.failed_tg_allocs) or None,
            class_eligibility=dict(self.class_eligibility) or None,
            escaped_computed_class=self.escaped,
            snapshot_index=getattr(self.snapshot, "index", 0),
            create_time=self.now,
            modify_time=self.now,
        )
        self.planner.create_eval(self.blocked)

    def _finish(self, status: str, desc: str) -> None:
        ev = self.eval
        if ev.status == EVAL_STATUS_BLOCKED and self.failed_tg_allocs and status == EVAL_STATUS_COMPLETE:
            # A blocked eval that still cannot place everything goes back to waiting.
            self.planner.reblock_eval(evolve(
                ev,
                failed_tg_allocs=dict(self.failed_tg_allocs),
                class_eligibility=dict(self.class_eligibility) or None,
                escaped_computed_class=self.escaped,
                queued_allocations=dict(self.queued),
                snapshot_index=getattr(self.snapshot, "index", 0),
                modify_time=self.now,
            ))
            return
        self.planner.update_eval(evolve(
            ev,
            status=status,
            status_description=desc,
            failed_tg_allocs=dict(self.failed_tg_allocs) or None,
            queued_allocations=dict(self.queued),
            blocked_eval=self.blocked.id if self.blocked is not None else ev.blocked_eval,
            deployment_id=self.deployment.id if self.deployment is not None else ev.deployment_id,
            modify_time=self.now,
        ))
