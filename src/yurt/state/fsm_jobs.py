"""FSM rules for jobs: versions, status, summaries (Nomad's state store semantics)."""

import msgspec

from yurt.structs import (
    ALLOC_CLIENT_COMPLETE,
    ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_LOST,
    ALLOC_CLIENT_PENDING,
    ALLOC_CLIENT_RUNNING,
    ALLOC_CLIENT_UNKNOWN,
    EVAL_STATUS_BLOCKED,
    EVAL_STATUS_CANCELED,
    EVAL_STATUS_COMPLETE,
    JOB_STATUS_DEAD,
    JOB_STATUS_PENDING,
    JOB_STATUS_RUNNING,
    JOB_TYPE_SYSTEM,
    Allocation,
    Evaluation,
    Job,
    JobChildrenSummary,
    JobSummary,
    TaskGroupSummary,
    evolve,
)

from .txn import StateError, Txn

JOB_TRACKED_VERSIONS = 6

# Fields that do not make a new version when they alone differ (Nomad's Job.SpecChanged).
_NON_SPEC_FIELDS = dict(
    status="",
    status_description="",
    stable=False,
    version=0,
    submit_time=0,
    create_index=0,
    modify_index=0,
    job_modify_index=0,
)


def spec_changed(old: Job, new: Job) -> bool:
    return evolve(old, **_NON_SPEC_FIELDS) != evolve(new, **_NON_SPEC_FIELDS)


# -- status ----------------------------------------------------------------
def compute_job_status(txn: Txn, job: Job, eval_delete: bool = False) -> str:
    """Nomad's getJobStatus."""
    if job.type == JOB_TYPE_SYSTEM or job.is_parameterized or job.is_periodic:
        return JOB_STATUS_DEAD if job.stop else JOB_STATUS_RUNNING
    live_allocs, live_evals = txn.job_liveness(job.namespace, job.id)
    if live_allocs:
        return JOB_STATUS_RUNNING
    if live_evals:
        return JOB_STATUS_PENDING
    if eval_delete or txn.has_evals(job.namespace, job.id) or txn.has_allocs(job.namespace, job.id):
        return JOB_STATUS_DEAD
    return JOB_STATUS_PENDING


def set_job_status(txn: Txn, namespace: str, job_id: str, force: str = "", eval_delete: bool = False) -> None:
    """Recompute (or force) the stored job's status; write it only when it changed."""
    job = txn.job_by_id(namespace, job_id)
    if job is None:
        return
    new_status = force or compute_job_status(txn, job, eval_delete)
    if new_status == job.status:
        return
    txn.put_job(evolve(job, status=new_status, modify_index=txn.index))
    _update_parent_children(txn, job, job.status, new_status)


def set_job_statuses(txn: Txn, forced: dict[tuple[str, str], str], eval_delete: bool = False) -> None:
    for (namespace, job_id), force in forced.items():
        set_job_status(txn, namespace, job_id, force, eval_delete)


def _update_parent_children(txn: Txn, child: Job, old_status: str, new_status: str) -> None:
    if not child.parent_id:
        return
    summary = txn.job_summary(child.namespace, child.parent_id)
    if summary is None:
        return
    children = summary.children or JobChildrenSummary()
    counts = {"pending": children.pending, "running": children.running, "dead": children.dead}
    if old_status in counts:
        counts[old_status] = max(0, counts[old_status] - 1)
    if new_status in counts:
        counts[new_status] += 1
    txn.put_summary(evolve(summary, children=JobChildrenSummary(**counts), modify_index=txn.index))


# -- register / deregister -------------------------------------------------
def register_job(txn: Txn, job: Job, submit_time: int) -> Job:
    """Insert or update a job; a changed spec becomes a new version. Returns the stored job."""
    existing = txn.job_by_id(job.namespace, job.id)
    if existing is not None and not spec_changed(existing, job):
        return existing
    index = txn.index
    changes: dict = dict(modify_index=index, job_modify_index=index, stable=False)
    if submit_time:
        changes["submit_time"] = submit_time
    if existing is None:
        changes.update(create_index=index, version=0, status="")
    else:
        version = job.version if job.version > existing.version else existing.version + 1
        changes.update(create_index=existing.create_index, version=version, status=existing.status)
    stored = evolve(job, **changes)
    _ensure_summary(txn, stored)
    status = compute_job_status(txn, stored)
    if status != stored.status:
        _update_parent_children(txn, stored, stored.status, status)
        stored = evolve(stored, status=status)
    txn.put_job(stored)
    _add_version(txn, stored)
    return stored


def deregister_job(txn: Txn, namespace: str, job_id: str, purge: bool, submit_time: int) -> None:
    existing = txn.job_by_id(namespace, job_id)
    if existing is None:
        raise StateError(f'job "{job_id}" in namespace "{namespace}" not found')
    if purge:
        if existing.parent_id:
            _update_parent_children(txn, existing, existing.status, "")
        txn.delete_job(namespace, job_id)
        return
    stopped = evolve(existing, stop=True)
    register_job(txn, stopped, submit_time or existing.submit_time)


def set_job_stability(txn: Txn, namespace: str, job_id: str, version: int, stable: bool) -> None:
    versions = txn.job_versions(namespace, job_id)
    found = [i for i, j in enumerate(versions) if j.version == version]
    if not found:
        raise StateError(f'job "{job_id}" in namespace "{namespace}" has no version {version}')
    i = found[0]
    versions[i] = evolve(versions[i], stable=stable)
    txn.put_job_versions(namespace, job_id, tuple(versions))
    current = txn.job_by_id(namespace, job_id)
    if current is not None and current.version == version:
        txn.put_job(evolve(current, stable=stable, modify_index=txn.index))


def _add_version(txn: Txn, job: Job) -> None:
    """Prepend the version; keep JOB_TRACKED_VERSIONS, preferring to keep the newest stable one."""
    versions = [job, *(v for v in txn.job_versions(job.namespace, job.id) if v.version != job.version)]
    if len(versions) > JOB_TRACKED_VERSIONS:
        keep = JOB_TRACKED_VERSIONS
        stable_at = next((i for i, v in enumerate(versions) if v.stable), -1)
        if stable_at == keep:
            versions[keep - 1], versions[keep] = versions[keep], versions[keep - 1]
        versions = versions[:keep]
    txn.put_job_versions(job.namespace, job.id, tuple(versions))


# -- summaries -------------------------------------------------------------
def _ensure_summary(txn: Txn, job: Job) -> None:
    """Create the job's summary, or add task groups new to it (Nomad's updateSummaryWithJob)."""
    summary = txn.job_summary(job.namespace, job.id)
    if summary is None:
        summary = JobSummary(
            job_id=job.id,
            namespace=job.namespace,
            summary={},
            children=JobChildrenSummary(),
            create_index=txn.index,
        )
        changed = True
    else:
        changed = False
    groups = dict(summary.summary)
    for tg in job.task_groups or ():
        if tg.name not in groups:
            groups[tg.name] = TaskGroupSummary()
            changed = True
    if changed:
        txn.put_summary(evolve(summary, summary=groups, modify_index=txn.index))


_COUNTER = {
    ALLOC_CLIENT_PENDING: "starting",
    ALLOC_CLIENT_RUNNING: "running",
    ALLOC_CLIENT_FAILED: "failed",
    ALLOC_CLIENT_COMPLETE: "complete",
    ALLOC_CLIENT_LOST: "lost",
    ALLOC_CLIENT_UNKNOWN: "unknown",
}
# Terminal counters are never decremented (Nomad's updateSummaryWithAlloc).
_DECREMENTED = {ALLOC_CLIENT_PENDING, ALLOC_CLIENT_RUNNING, ALLOC_CLIENT_LOST, ALLOC_CLIENT_UNKNOWN}


class AllocSummaries:
    """Counting alloc writes into their jobs' summaries (Nomad's updateSummaryWithAlloc),
    one summary write per job at `flush()` instead of one per alloc. The counts go through
    the same steps in the same order; call `flush()` before anything reads the summaries."""

    __slots__ = ("txn", "_pending")

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        # job key -> (its stored summary, {task group: counts}); None: not counted
        self._pending: dict[tuple[str, str], tuple[JobSummary, dict[str, dict]] | None] = {}

    def add(self, alloc: Allocation, existing: Allocation | None) -> None:
        """Count an inserted or updated alloc."""
        if alloc.job is None:
            return
        if existing is None:
            if alloc.client_status != ALLOC_CLIENT_PENDING:
                return
        elif existing.client_status == alloc.client_status:
            return
        key = (alloc.namespace, alloc.job_id)
        pending = self._pending.get(key, _UNSEEN)
        if pending is _UNSEEN:
            summary = self.txn.job_summary(alloc.namespace, alloc.job_id)
            pending = self._pending[key] = (summary, {}) if summary is not None else None
        if pending is None:
            return
        summary, groups = pending
        if summary.create_index != alloc.job.create_index:
            return  # the alloc belongs to an earlier incarnation of the job
        counts = groups.get(alloc.task_group)
        if counts is None:
            tg = summary.summary.get(alloc.task_group)
            if tg is None:
                return
            counts = groups[alloc.task_group] = msgspec.structs.asdict(tg)
        if existing is None:
            counts["starting"] += 1
            counts["queued"] = max(0, counts["queued"] - 1)
            return
        if alloc.client_status in _COUNTER:
            counts[_COUNTER[alloc.client_status]] += 1
        if existing.client_status in _DECREMENTED:
            name = _COUNTER[existing.client_status]
            counts[name] = max(0, counts[name] - 1)

    def flush(self) -> None:
        txn = self.txn
        for pending in self._pending.values():
            if pending is None or not pending[1]:
                continue
            summary, counted = pending
            groups = dict(summary.summary)
            for name, counts in counted.items():
                groups[name] = TaskGroupSummary(**counts)
            txn.put_summary(evolve(summary, summary=groups, modify_index=txn.index))
        self._pending = {}


_UNSEEN = object()


def summary_with_eval(txn: Txn, ev: Evaluation) -> None:
    """Queued allocations come from the newest eval of the job."""
    if not ev.queued_allocations:
        return
    summary = txn.job_summary(ev.namespace, ev.job_id)
    if summary is None:
        return
    groups = dict(summary.summary)
    changed = False
    for name, queued in ev.queued_allocations.items():
        tg = groups.get(name)
        if tg is not None and tg.queued != queued:
            groups[name] = evolve(tg, queued=queued)
            changed = True
    if changed:
        txn.put_summary(evolve(summary, summary=groups, modify_index=txn.index))


# -- evals -----------------------------------------------------------------
def upsert_evals(txn: Txn, evals: list[Evaluation]) -> None:
    """Insert or update evals (Nomad's upsertEvalImpl), then recompute their jobs' status."""
    jobs: dict[tuple[str, str], str] = {}
    if len(evals) > 1 and _batchable(evals):
        _upsert_eval_batch(txn, evals, jobs)
        set_job_statuses(txn, jobs)
        return
    for ev in evals:
        existing = txn.eval_by_id(ev.id)
        summary_with_eval(txn, ev)
        if ev.status == EVAL_STATUS_COMPLETE and not ev.failed_tg_allocs:
            _cancel_blocked_evals(txn, ev, existing)
        txn.put_eval(_stamped(ev, existing, txn.index))
        jobs[(ev.namespace, ev.job_id)] = ""
    set_job_statuses(txn, jobs)


def _stamped(ev: Evaluation, existing: Evaluation | None, index: int) -> Evaluation:
    """`ev` as stored at `index`: its create index the existing eval's (else `index`), its
    modify index `index`. A writer that knows the index its command lands at (a register
    group's evals, the broker's cancels) sets both, and the eval is stored as it is."""
    create_index = existing.create_index if existing is not None else index
    if ev.create_index == create_index and ev.modify_index == index:
        return ev
    return evolve(ev, create_index=create_index, modify_index=index)


def _batchable(evals: list[Evaluation]) -> bool:
    """Can these be written in one pass (`Txn.put_evals`)? Distinct IDs, and none complete
    (a complete eval cancels its job's blocked evals, which later ones may be)."""
    ids = set()
    for ev in evals:
        if ev.status == EVAL_STATUS_COMPLETE or ev.id in ids:
            return False
        ids.add(ev.id)
    return True


def _upsert_eval_batch(txn: Txn, evals: list[Evaluation], jobs: dict[tuple[str, str], str]) -> None:
    """`upsert_evals`' loop for a `_batchable` list: the same evals stored, in one pass."""
    index = txn.index
    olds, stored = [], []
    for ev in evals:
        existing = txn.eval_by_id(ev.id)
        summary_with_eval(txn, ev)
        olds.append(existing)
        stored.append(_stamped(ev, existing, index))
        jobs[(ev.namespace, ev.job_id)] = ""
    txn.put_evals(stored, olds)


def _cancel_blocked_evals(txn: Txn, done: Evaluation, existing: Evaluation | None = None) -> None:
    """Cancel the job's blocked evals (`done` completed). `existing`: `done` as stored
    before; a job whose only live eval is `done` has no blocked one, and its evals (a
    storm's thousands, canceled) are not read."""
    live = txn.job_liveness(done.namespace, done.job_id)[1]
    if (existing is not None and not existing.terminal
            and (existing.namespace, existing.job_id) == (done.namespace, done.job_id)):
        live -= 1
    if live <= 0:
        return
    for blocked in txn.evals_by_job(done.namespace, done.job_id):
        if blocked.status == EVAL_STATUS_BLOCKED and blocked.id != done.id:
            txn.put_eval(
                evolve(
                    blocked,
                    status=EVAL_STATUS_CANCELED,
                    status_description=f'evaluation "{done.id}" successful',
                    modify_index=txn.index,
                    modify_time=done.modify_time or blocked.modify_time,
                )
            )


def delete_evals(txn: Txn, eval_ids: list[str], alloc_ids: list[str]) -> None:
    jobs: dict[tuple[str, str], str] = {}
    for eval_id in eval_ids:
        old = txn.delete_eval(eval_id)
        if old is not None:
            jobs[(old.namespace, old.job_id)] = ""
    for alloc_id in alloc_ids:
        txn.delete_alloc(alloc_id)
    txn.touch("evals")
    txn.touch("allocs")
    set_job_statuses(txn, jobs, eval_delete=True)
