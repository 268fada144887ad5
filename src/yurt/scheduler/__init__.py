"""yurt.scheduler: pure scheduling. A state snapshot and an evaluation in, a plan out.

    sched = new_scheduler(eval.type, snapshot, planner, now_ns=..., config=scheduler_config)
    sched.process(eval)

No asyncio, sockets, storage or clock reads here: time comes in as `now_ns`, and
randomness is seeded by the eval ID.
"""

from __future__ import annotations

from yurt.structs import Evaluation, SchedulerConfiguration, evolve
from yurt.structs.eval import EVAL_STATUS_FAILED

from .constraints import check_operator, constraint_matches, resolve_target
from .generic import GenericScheduler
from .node_class import computed_class
from .planner import Planner, Scheduler, StateSnapshot
from .reconcile import Reconciler, ReconcileResult
from .system import SystemScheduler
from .update import tasks_updated
from .versions import check_version_constraint

__all__ = [
    "GenericScheduler", "SystemScheduler", "Planner", "Reconciler", "ReconcileResult", "Scheduler", "StateSnapshot",
    "check_operator", "check_version_constraint", "computed_class", "constraint_matches",
    "new_scheduler", "resolve_target", "tasks_updated",
]


class UnsupportedScheduler:
    """Fails evaluations of a type this build cannot schedule yet, saying so."""

    def __init__(self, eval_type: str, planner: Planner, now_ns: int) -> None:
        self.eval_type = eval_type
        self.planner = planner
        self.now = now_ns

    def process(self, ev: Evaluation) -> None:
        self.planner.update_eval(evolve(
            ev,
            status=EVAL_STATUS_FAILED,
            status_description=f"scheduler for eval type {self.eval_type!r} is not implemented",
            modify_time=self.now,
        ))


def new_scheduler(
    eval_type: str,
    snapshot: StateSnapshot,
    planner: Planner,
    now_ns: int,
    config: SchedulerConfiguration | None = None,
) -> Scheduler:
    """The scheduler for an eval type: `service` and `batch` use the generic scheduler,
    `system` and `sysbatch` the system scheduler; other types fail their evals."""
    if eval_type == "service":
        return GenericScheduler(snapshot, planner, now_ns, config, batch=False)
    if eval_type == "batch":
        return GenericScheduler(snapshot, planner, now_ns, config, batch=True)
    if eval_type == "system":
        return SystemScheduler(snapshot, planner, now_ns, config, sysbatch=False)
    if eval_type == "sysbatch":
        return SystemScheduler(snapshot, planner, now_ns, config, sysbatch=True)
    return UnsupportedScheduler(eval_type, planner, now_ns)
