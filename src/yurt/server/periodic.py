"""The periodic dispatcher (leader only): launches the children of periodic jobs on their
cron schedule, as Nomad's `nomad/periodic.go` does.

Every active periodic job (periodic, enabled, not stopped, not a parameterized template) is
tracked with its next launch time, computed in the job's `time_zone` from the server's
injectable clock. `tick()` (run by the leader's timer loop; tests call it after moving a
fake clock) launches each due job: a child job `<id>/periodic-<launch unix seconds>` with
`ParentID` set, `Periodic` cleared and a `periodic-job` eval, committed in one JobRegister.
With `prohibit_overlap` a launch is skipped while an earlier child still has a live eval or
alloc. The FSM records each launch in the `periodic_launch` table, so `restore()` after a
restart or failover launches once if (and only if) a launch was missed.
"""

import logging
from dataclasses import dataclass

from yurt.state.periodic_launch import PERIODIC_LAUNCH_SUFFIX, is_periodic_active
from yurt.structs import (
    EVAL_STATUS_PENDING,
    TRIGGER_PERIODIC_JOB,
    Evaluation,
    Job,
    evolve,
    generate_uuid,
)
from yurt.structs.cron import next_launch_after

from .clock import NS_PER_SECOND

log = logging.getLogger(__name__)

MAX_LAUNCHES_PER_TICK = 100  # per job: catching up after a long stall is bounded


class PeriodicError(Exception):
    """A force launch that cannot happen (Nomad's wording)."""


@dataclass
class Launched:
    job_id: str
    eval: Evaluation
    index: int


def next_launch(job: Job, after: float) -> float | None:
    """Unix seconds of the job's first launch strictly after `after`, or None."""
    p = job.periodic
    if p is None:
        return None
    found = next_launch_after(p.spec, p.specs, p.time_zone, after)
    return found.timestamp() if found is not None else None


def derived_job_id(job: Job, launch: float) -> str:
    return f"{job.id}{PERIODIC_LAUNCH_SUFFIX}{int(launch)}"


def derive_child(job: Job, launch: float) -> Job:
    """The child of a periodic job launched at `launch` (Nomad's deriveJob)."""
    child_id = derived_job_id(job, launch)
    return evolve(job, id=child_id, name=child_id, parent_id=job.id, periodic=None, status="",
                  status_description="", stable=False, version=0, create_index=0, modify_index=0,
                  job_modify_index=0, submit_time=0)


def has_running_children(snapshot, job: Job) -> bool:
    """Nomad's RunningChildren: a child of `job` with a non-terminal eval or alloc."""
    prefix = job.id + PERIODIC_LAUNCH_SUFFIX
    for child in snapshot.by_prefix("jobs", prefix, job.namespace):
        if child.parent_id != job.id:
            continue
        if any(not ev.terminal for ev in snapshot.evals_by_job(child.namespace, child.id)):
            return True
        if any(not a.terminal for a in snapshot.allocs_by_job(child.namespace, child.id)):
            return True
    return False


class PeriodicDispatch:
    def __init__(self, server):
        self.server = server
        self.enabled = False
        self.tracked: dict[tuple[str, str], Job] = {}
        self.next: dict[tuple[str, str], float | None] = {}

    # -- leadership ------------------------------------------------------------
    def set_enabled(self, enabled: bool) -> None:
        if enabled == self.enabled:
            return
        self.enabled = enabled
        state = self.server.state
        if enabled:
            state.add_listener(self._on_apply)
        else:
            if state is not None:
                state.remove_listener(self._on_apply)
            self.tracked.clear()
            self.next.clear()

    def restore(self) -> list[Launched]:
        """Track every periodic job; launch once those whose last launch missed its successor
        (Nomad's restorePeriodicDispatcher)."""
        snapshot = self.server.state.snapshot()
        now = self.server.clock.now()
        launched = []
        for job in snapshot.jobs(None):
            if job.periodic is None or job.is_parameterized:
                continue
            self.add(job)
            if not is_periodic_active(job):
                continue
            row = snapshot.periodic_launch(job.namespace, job.id)
            if row is None:
                log.error("no recorded periodic launch time for job %r in namespace %r", job.id, job.namespace)
                continue
            missed = next_launch(job, row.launch / NS_PER_SECOND)
            if missed is None or missed >= now:
                continue
            if job.periodic.prohibit_overlap and has_running_children(snapshot, job):
                continue
            log.info("periodic job %s missed its launch at %s: launching now", job.id, missed)
            launched.append(self._launch(job, now))
        return launched

    # -- tracking --------------------------------------------------------------
    def _on_apply(self, index: int, command) -> None:
        kind = type(command).__name__
        if kind == "JobRegister":
            key = (command.job.namespace, command.job.id)
        elif kind == "JobDeregister":
            key = (command.namespace, command.job_id)
        else:
            return
        job = self.server.state.snapshot().job_by_id(*key)
        if job is None:
            self.remove(*key)
        else:
            self.add(job)

    def add(self, job: Job) -> None:
        """Track (or re-track) a job; a job no longer periodic-active is dropped."""
        if not self.enabled:
            return
        key = (job.namespace, job.id)
        if not is_periodic_active(job):
            self.remove(*key)
            return
        self.tracked[key] = job
        self.next[key] = next_launch(job, self.server.clock.now())
        if self.next[key] is None:
            log.warning("periodic job %s (%s): no next launch for its cron spec", job.id, job.namespace)

    def remove(self, namespace: str, job_id: str) -> None:
        self.tracked.pop((namespace, job_id), None)
        self.next.pop((namespace, job_id), None)

    def next_launch_of(self, namespace: str, job_id: str) -> float | None:
        return self.next.get((namespace, job_id))

    # -- launching -------------------------------------------------------------
    def tick(self) -> list[Launched]:
        """Launch every tracked job whose next launch is due; returns what was launched."""
        if not self.enabled:
            return []
        now = self.server.clock.now()
        launched = []
        for key in list(self.next):
            for _ in range(MAX_LAUNCHES_PER_TICK):
                due = self.next.get(key)
                job = self.tracked.get(key)
                if due is None or job is None or due > now:
                    break
                self.next[key] = next_launch(job, due)
                result = self._dispatch(job, due)
                if result is not None:
                    launched.append(result)
        return launched

    def _dispatch(self, job: Job, launch: float) -> Launched | None:
        if job.periodic.prohibit_overlap and has_running_children(self.server.state.snapshot(), job):
            log.debug("skipping launch of periodic job %s: it prohibits overlap", job.id)
            return None
        try:
            return self._launch(job, launch)
        except Exception:
            log.exception("launching periodic job %s failed", job.id)
            return None

    def force(self, namespace: str, job_id: str) -> Launched:
        """Launch a child now, whatever `prohibit_overlap` says (Nomad's ForceEval)."""
        if not self.enabled:
            raise PeriodicError("periodic dispatch disabled")
        job = self.tracked.get((namespace, job_id))
        if job is None:
            raise PeriodicError(f'can\'t force run non-tracked job "{job_id}" ({namespace})')
        return self._launch(job, self.server.clock.now())

    def _launch(self, job: Job, launch: float) -> Launched:
        from yurt.state.commands import JobRegister

        child = derive_child(job, launch)
        now = self.server.now_ns()
        ev = Evaluation(id=generate_uuid(), namespace=child.namespace, priority=child.priority, type=child.type,
                        triggered_by=TRIGGER_PERIODIC_JOB, job_id=child.id, status=EVAL_STATUS_PENDING,
                        create_time=now, modify_time=now)
        index = self.server.state.apply(JobRegister(job=child, eval=ev, submit_time=now))
        log.info("launched periodic job %s", child.id)
        return Launched(child.id, ev, index)
