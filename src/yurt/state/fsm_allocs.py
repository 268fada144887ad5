"""FSM rules for allocations: plan results, client updates, desired transitions."""

import msgspec

from yurt.structs import (
    ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_LOST,
    ALLOC_CLIENT_UNKNOWN,
    ALLOC_DESIRED_EVICT,
    ALLOC_DESIRED_STOP,
    EVAL_STATUS_PENDING,
    JOB_STATUS_RUNNING,
    TRIGGER_RECONNECT,
    TRIGGER_RETRY_FAILED_ALLOC,
    Allocation,
    DesiredTransition,
    Evaluation,
    Job,
    evolve,
    generate_uuid,
    share_task_states,
    shared_str,
)
from yurt.structs.alloc import CLIENT_TERMINAL_STATUSES

from .commands import AllocClientUpdate, AllocDesiredTransition, PlanApply
from .deployments import apply_plan_deployment, track_alloc
from .fsm_jobs import AllocSummaries, set_job_statuses, upsert_evals
from .txn import StateError, Txn

_SCHEDULER_CLIENT_STATUSES = (ALLOC_CLIENT_LOST, ALLOC_CLIENT_UNKNOWN)
_SERVER_TERMINAL = (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)  # `Allocation.terminal`, inline
_replace = msgspec.structs.replace  # `evolve` without the extra call


# (command, state index, IDs): set by the plan applier (`absent_at`) for the one command it
# is about to commit; see `_absent_ids`
_absent_hint: tuple | None = None


def absent_at(cmd: PlanApply | None, index: int = 0, alloc_ids: set[str] | None = None) -> None:
    """Tell `apply_plan` that `alloc_ids` (placed by `cmd`) are not in the state at `index`
    (the applier looked each up there), so that it need not look them up again when it
    applies `cmd` right on that state. Nothing of it is logged: a replay looks them up and
    finds the same. `absent_at(None)` forgets it; `apply_plan` uses it up (`alloc_ids` is
    emptied)."""
    global _absent_hint
    _absent_hint = (cmd, index, alloc_ids) if cmd is not None and alloc_ids else None


def _absent_ids(txn: Txn, cmd: PlanApply) -> set[str]:
    """The IDs the applier found absent, when `cmd` is the command it named and `txn`
    applies it on the state it looked in (the one at the index before `txn`'s); else none."""
    global _absent_hint
    hint = _absent_hint
    if hint is None or hint[0] is not cmd:
        return set()
    _absent_hint = None
    return hint[2] if hint[1] == txn.index - 1 else set()


def apply_plan(txn: Txn, cmd: PlanApply) -> None:
    """Commit a plan result (Nomad's UpsertPlanResults)."""
    absent = _absent_ids(txn, cmd)  # (before anything is written)
    upserts: list[Allocation] = []
    apply_plan_deployment(txn, cmd)
    plan_job = _shared_job(txn, cmd.job)
    for allocs in cmd.node_update.values():
        upserts.extend(_stopped(txn, a, cmd.updated_at) for a in allocs)
    for allocs in cmd.node_preemptions.values():
        upserts.extend(_preempted(txn, a, cmd.updated_at) for a in allocs)
    upserts = [a for a in upserts if a is not None]
    placed_from = len(upserts)
    for allocs in cmd.node_allocation.values():
        upserts.extend(allocs)
    # the placed allocs without a job get the plan's (not the stopped or evicted ones)
    upsert_allocs(txn, upserts, cmd.updated_at, plan_job, placed_from, absent)
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _shared_job(txn: Txn, job: Job | None) -> Job | None:
    """The stored version object when the plan's job is that version (one shared object
    for all allocs of a version, also after the log is replayed), else the plan's job."""
    if job is None:
        return None
    stored = txn.job_version(job.namespace, job.id, job.version)
    if stored is not None and stored.job_modify_index == job.job_modify_index and stored.create_index == job.create_index:
        return stored
    return job


def _stopped(txn: Txn, update: Allocation, now: int) -> Allocation | None:
    """The stored alloc with the scheduler's stop decision merged in."""
    existing = txn.alloc_by_id(update.id)
    if existing is None:
        return None
    changes: dict = dict(
        desired_status=update.desired_status,
        desired_description=update.desired_description,
        modify_time=now,
    )
    if update.client_status in _SCHEDULER_CLIENT_STATUSES:
        changes.update(client_status=update.client_status, client_description=update.client_description)
    if update.followup_eval_id:
        changes["followup_eval_id"] = update.followup_eval_id
    return evolve(existing, **changes)


def _preempted(txn: Txn, update: Allocation, now: int) -> Allocation | None:
    existing = txn.alloc_by_id(update.id)
    if existing is None:
        return None
    return evolve(
        existing,
        desired_status=ALLOC_DESIRED_EVICT,
        desired_description=f"Preempted by alloc ID {update.preempted_by_allocation}",
        preempted_by_allocation=update.preempted_by_allocation,
        modify_time=now,
    )


def upsert_allocs(txn: Txn, allocs: list[Allocation], now: int, plan_job: Job | None = None,
                  plan_job_from: int = 0, absent: set[str] | None = None) -> None:
    """Insert or update allocs from the scheduler (Nomad's upsertAllocsImpl). The allocs from
    position `plan_job_from` on that have no job and are not terminal get `plan_job`.
    `absent`: IDs known not to be stored before this call (`_absent_ids`); the first alloc
    of each such ID is inserted without a lookup (the set is emptied as they are used, so
    an ID listed twice is looked up the second time and updates the first)."""
    if absent is None:
        absent = set()
    index = txn.index
    jobs: dict[tuple[str, str], str] = {}
    summaries = AllocSummaries(txn)
    txn.batch_new_allocs()  # nothing below reads the alloc indexes until index_new_allocs
    for position, alloc in enumerate(allocs):
        terminal = alloc.desired_status in _SERVER_TERMINAL or alloc.client_status in CLIENT_TERMINAL_STATUSES
        if alloc.job is None and plan_job is not None and position >= plan_job_from and not terminal:
            job = plan_job
        else:
            job = alloc.job
        if alloc.id in absent:
            absent.discard(alloc.id)
            existing = None
        else:
            existing = txn.alloc_by_id(alloc.id)
        if existing is None:
            if job is None:
                raise StateError(f'allocation "{alloc.id}": cannot insert an allocation without a job')
            alloc = _replace(
                alloc,
                job=job,
                create_index=index,
                modify_index=index,
                alloc_modify_index=index,
                create_time=alloc.create_time or now,
                modify_time=now or alloc.modify_time,
            )  # the statuses are the scheduler's: `terminal` stands
        else:
            changes: dict = dict(
                create_index=existing.create_index,
                create_time=existing.create_time,
                modify_index=index,
                alloc_modify_index=index,
                task_states=existing.task_states,
                modify_time=now or alloc.modify_time,
            )
            if alloc.client_status not in _SCHEDULER_CLIENT_STATUSES:
                changes.update(client_status=existing.client_status, client_description=existing.client_description)
            changes["job"] = job if job is not None else existing.job
            alloc = evolve(alloc, **changes)
            terminal = alloc.terminal
        summaries.add(alloc, existing)
        if alloc.deployment_id:
            track_alloc(txn, alloc, existing, now)
        txn.put_alloc(alloc, existing)
        if alloc.previous_allocation and existing is None:
            _link_previous(txn, alloc)
        # the job's status for `set_job_statuses`: running if any written alloc is live, else recomputed
        key = (alloc.namespace, alloc.job_id)
        if not terminal:
            jobs[key] = JOB_STATUS_RUNNING
        elif key not in jobs:
            jobs[key] = ""
    txn.index_new_allocs()
    summaries.flush()
    txn.touch("allocs")
    set_job_statuses(txn, jobs)


def _link_previous(txn: Txn, alloc: Allocation) -> None:
    prev = txn.alloc_by_id(alloc.previous_allocation)
    if prev is not None and prev.next_allocation != alloc.id:
        txn.put_alloc(evolve(prev, next_allocation=alloc.id, modify_index=txn.index))


def apply_client_update(txn: Txn, cmd: AllocClientUpdate) -> None:
    """Merge what clients report into the stored allocs (client fields only; Nomad's
    UpdateAllocsFromClient). `cmd.evals` None (the server's batcher): the follow-up evals
    of Node.UpdateAlloc (`_followup_evals`) are made here, from the stored allocs this
    write replaces, and kept in the command (the log holds them: a replay makes none)."""
    index = txn.index
    updated_at = cmd.updated_at
    make_evals = cmd.evals is None
    pairs: list[tuple[Allocation, Allocation]] = []
    candidates: list[tuple[Allocation, object]] = []
    shared = [None]  # the previous report's task states (shared): an equal report reuses them

    def merge(existing: Allocation, update) -> Allocation:
        status = update.client_status
        if make_evals and (status == ALLOC_CLIENT_FAILED or existing.client_status == ALLOC_CLIENT_UNKNOWN):
            candidates.append((existing, update))
        client_status = shared_str(status) or existing.client_status
        # only the fields the client sent: the others stay the stored ones
        if update.network_status is None and update.deployment_status is None and update.task_states is not None:
            states = update.task_states
            if states == shared[0]:  # (a node reports its allocs with the same states at once)
                states = shared[0]
            else:
                states = shared[0] = share_task_states(states)
            merged = _replace(existing, client_status=client_status,
                              client_description=shared_str(update.client_description), modify_index=index,
                              modify_time=updated_at or existing.modify_time,
                              task_states=states)  # (a status report: the usual)
        else:
            merged = _replace(existing, **_client_changes(existing, update, client_status, index, updated_at))
        pairs.append((existing, merged))
        return merged

    txn.rewrite_allocs(cmd.allocs, merge)
    if make_evals and len(pairs) != len(cmd.allocs):
        # the batcher queues updates without looking them up: those of allocs not stored
        # (garbage-collected, purged) are left out of the command the log keeps and the
        # listeners read, as if never sent (its updates are of distinct allocs, each
        # merged at most once, in order)
        merged_ids = {existing.id for existing, _ in pairs}
        cmd.allocs = [update for update in cmd.allocs if update.id in merged_ids]
    jobs: dict[tuple[str, str], str] = {}
    summaries = AllocSummaries(txn)
    for existing, merged in pairs:
        if existing.client_status != merged.client_status:
            summaries.add(merged, existing)
        if merged.deployment_id:
            track_alloc(txn, merged, existing, updated_at)
        key = (merged.namespace, merged.job_id)  # (the job's status, as in `upsert_allocs`)
        if merged.desired_status in _SERVER_TERMINAL or merged.client_status in CLIENT_TERMINAL_STATUSES:
            jobs.setdefault(key, "")
        else:
            jobs[key] = JOB_STATUS_RUNNING
    if make_evals:
        cmd.evals = _followup_evals(txn, candidates, updated_at)
    summaries.flush()
    txn.touch("allocs")
    set_job_statuses(txn, jobs)
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _followup_evals(txn: Txn, reported: list[tuple[Allocation, object]], now: int) -> list[Evaluation]:
    """Node.UpdateAlloc's evals: one per job (not stopped) that has an alloc the client
    reports failed (and was not failed), or reports back (any status but `unknown`) while
    the server has it `unknown` (a reconnect); `reported`: (stored alloc, update) pairs,
    of which the others are skipped."""
    evals: dict[tuple[str, str], Evaluation] = {}
    for alloc, update in reported:
        reconnect = alloc.client_status == ALLOC_CLIENT_UNKNOWN and update.client_status != ALLOC_CLIENT_UNKNOWN
        if update.client_status != ALLOC_CLIENT_FAILED and not reconnect:
            continue
        if alloc.client_status == ALLOC_CLIENT_FAILED:
            continue
        key = (alloc.namespace, alloc.job_id)
        job = txn.job_by_id(alloc.namespace, alloc.job_id)
        if job is None or job.stop or key in evals:
            continue
        evals[key] = Evaluation(
            id=generate_uuid(),
            namespace=job.namespace,
            priority=job.priority,
            type=job.type,
            triggered_by=TRIGGER_RECONNECT if reconnect else TRIGGER_RETRY_FAILED_ALLOC,
            job_id=job.id,
            job_modify_index=job.job_modify_index,
            status=EVAL_STATUS_PENDING,
            create_time=now,
            modify_time=now,
        )
    return list(evals.values())


def _client_changes(existing: Allocation, update, client_status: str, index: int, updated_at: int) -> dict:
    """What `apply_client_update` sets on the stored alloc from a client's update."""
    changes: dict = dict(
        client_status=client_status,
        client_description=shared_str(update.client_description),
        modify_index=index,
        modify_time=updated_at or existing.modify_time,
    )
    if update.task_states is not None:
        changes["task_states"] = share_task_states(update.task_states)
    if update.network_status is not None:
        changes["network_status"] = update.network_status
    if update.deployment_status is not None:
        base = existing.deployment_status or update.deployment_status
        changes["deployment_status"] = evolve(
            base,
            healthy=update.deployment_status.healthy,
            timestamp=update.deployment_status.timestamp,
            modify_index=index,
        )
    return changes


def apply_desired_transitions(txn: Txn, cmd: AllocDesiredTransition) -> None:
    for alloc_id, transition in cmd.transitions.items():
        existing = txn.alloc_by_id(alloc_id)
        if existing is None:
            continue
        merged = _merge_transition(existing.desired_transition, transition)
        txn.put_alloc(evolve(existing, desired_transition=merged, modify_index=txn.index))
    txn.touch("allocs")
    if cmd.evals:
        upsert_evals(txn, cmd.evals)


def _merge_transition(base: DesiredTransition, update: DesiredTransition) -> DesiredTransition:
    changes = {
        name: getattr(update, name)
        for name in DesiredTransition.__struct_fields__
        if getattr(update, name) is not None
    }
    return evolve(base, **changes)
