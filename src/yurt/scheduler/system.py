"""The system scheduler for `system` and `sysbatch` jobs (Nomad's SystemScheduler).

One alloc of each group on every ready, eligible node that passes the job's
constraints. A node that does not pass is skipped silently; a node that passes but
lacks resources is a failed placement (reported in `failed_tg_allocs`, no blocked
eval: a node change triggers a new evaluation). 5 plan attempts (sysbatch: 2).
"""

from __future__ import annotations

from yurt.structs import Allocation, Job, Plan, PlanAnnotations
from yurt.structs.base import evolve

from .feasible import ready_nodes
from .nodetable import node_table
from .generic import BATCH_MAX_ATTEMPTS, SERVICE_MAX_ATTEMPTS, GenericScheduler
from .reconcile_node import NodeReconciler


class SystemScheduler(GenericScheduler):
    def __init__(self, snapshot, planner, now_ns: int, config=None, sysbatch: bool = False) -> None:
        super().__init__(snapshot, planner, now_ns, config, batch=sysbatch)
        self.sysbatch = sysbatch
        self.max_attempts = BATCH_MAX_ATTEMPTS if sysbatch else SERVICE_MAX_ATTEMPTS
        self.blocks_on_failure = False

    def _compute(self, plan: Plan, job: Job | None, allocs: list[Allocation]):
        table = node_table(self.snapshot) if job is not None else None
        if table is not None:  # computed once per node table for the jobs of a storm's evals
            ready = table.ready(job)[0]  # read-only, sorted by ID; the builder shuffles a copy
        else:
            ready = ready_nodes(self.snapshot.nodes(), job) if job is not None else None
        candidates = ready.nodes if ready is not None else []
        result = NodeReconciler(
            job, allocs, list(candidates), self.snapshot.node_by_id, self.sysbatch, self._update_kind,
            now_ns=self.now, eval_id=self.eval.id, priority=self.eval.priority,
        ).compute()
        plan.annotations = PlanAnnotations(desired_tg_updates=result.desired_tg_updates)
        if job is None:
            for req in result.stop:
                plan.append_stopped_alloc(req.alloc, req.description, req.client_status)
            return [], None
        builder = self._new_builder(plan, job)
        if table is None:
            builder.use_candidates(ready)  # the same nodes: ready_nodes sorts them by ID
        for req in result.stop:
            builder.stop(req.alloc, req.description, req.client_status)
        for alloc in result.attribute_updates:  # unknown / reconnected (disconnect rules)
            plan.append_alloc(evolve(alloc, job=None, modify_time=self.now))
        inplace_failures = builder.apply_inplace(result)
        node_of = {a.id: self.snapshot.node_by_id(a.node_id) for a in (r.previous for r in inplace_failures)}
        placements = [(node_of[r.previous.id], r) for r in inplace_failures] + result.place
        for node, req in placements:
            if node is None:
                continue
            self.queued[req.task_group.name] = self.queued.get(req.task_group.name, 0) + 1
            if builder.place_one(req, node) is None and builder.last_failure_was_filter:
                # a node that cannot run the group at all is not a queued placement
                self.queued[req.task_group.name] -= 1
        self._collect(builder)
        return result.followup_evals, builder
