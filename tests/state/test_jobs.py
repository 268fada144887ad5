"""Job commands: versions, stop/purge, status rules, summaries."""

import pytest
from state_fixtures import alloc, evaluation, job, node

from yurt.state import (
    JOB_TRACKED_VERSIONS,
    AllocClientUpdate,
    AllocUpdate,
    EvalDelete,
    EvalUpsert,
    JobDeregister,
    JobRegister,
    JobStabilitySet,
    NodeRegister,
    PlanApply,
    StateError,
    StateStore,
)
from yurt.structs import ParameterizedJobConfig, PeriodicConfig, evolve


@pytest.fixture
def store():
    s = StateStore.open(None)
    yield s
    s.close()


def test_register_sets_indexes_and_version_zero(store):
    idx = store.apply(JobRegister(job=job(), submit_time=123))
    stored = store.snapshot().job_by_id("default", "web")
    assert (stored.create_index, stored.modify_index, stored.job_modify_index) == (idx, idx, idx)
    assert stored.version == 0 and stored.submit_time == 123 and not stored.stable
    assert stored.status == "pending"
    assert store.snapshot().table_index("jobs") == idx
    assert [v.version for v in store.snapshot().job_versions("default", "web")] == [0]


def test_changed_job_is_a_new_version_and_identical_keeps_it(store):
    first = store.apply(JobRegister(job=job()))
    second = store.apply(JobRegister(job=job(meta={"v": "2"})))
    snap = store.snapshot()
    stored = snap.job_by_id("default", "web")
    assert stored.version == 1 and stored.create_index == first and stored.job_modify_index == second
    store.apply(JobRegister(job=job(meta={"v": "2"})))
    again = store.snapshot().job_by_id("default", "web")
    assert again.version == 1 and again.job_modify_index == second
    assert [v.version for v in store.snapshot().job_versions("default", "web")] == [1, 0]
    assert store.snapshot().job_version("default", "web", 0).meta is None


def test_register_eval_gets_job_modify_index(store):
    j = job()
    ev = evaluation(j)
    idx = store.apply(JobRegister(job=j, eval=ev))
    stored_eval = store.snapshot().eval_by_id(ev.id)
    assert stored_eval.job_modify_index == idx and stored_eval.create_index == idx


def test_keeps_six_versions_and_the_newest_stable_one(store):
    store.apply(JobRegister(job=job(meta={"v": "0"})))
    store.apply(JobStabilitySet(namespace="default", job_id="web", version=0, stable=True))
    for v in range(1, 8):
        store.apply(JobRegister(job=job(meta={"v": str(v)})))
    versions = [v.version for v in store.snapshot().job_versions("default", "web")]
    assert len(versions) == JOB_TRACKED_VERSIONS
    # version 0 is the only stable one: each time it would drop out it swaps with the 6th
    assert versions == [7, 6, 5, 4, 3, 0]
    assert store.snapshot().job_version("default", "web", 0).stable


def test_stable_version_swapped_into_the_kept_set(store):
    for v in range(6):
        store.apply(JobRegister(job=job(meta={"v": str(v)})))
    store.apply(JobStabilitySet(namespace="default", job_id="web", version=0, stable=True))
    store.apply(JobRegister(job=job(meta={"v": "6"})))
    versions = [v.version for v in store.snapshot().job_versions("default", "web")]
    assert versions == [6, 5, 4, 3, 2, 0]


def test_stability_marks_current_job(store):
    store.apply(JobRegister(job=job()))
    store.apply(JobStabilitySet(namespace="default", job_id="web", version=0, stable=True))
    assert store.snapshot().job_by_id("default", "web").stable
    with pytest.raises(StateError, match="no version 9"):
        store.apply(JobStabilitySet(namespace="default", job_id="web", version=9))


def test_new_version_is_not_stable(store):
    store.apply(JobRegister(job=job()))
    store.apply(JobStabilitySet(namespace="default", job_id="web", version=0, stable=True))
    store.apply(JobRegister(job=job(meta={"x": "y"})))
    assert not store.snapshot().job_by_id("default", "web").stable


def test_deregister_stops_as_a_new_version(store):
    j = job()
    store.apply(JobRegister(job=j, eval=evaluation(j)))
    idx = store.apply(JobDeregister(namespace="default", job_id="web", eval=evaluation(j), submit_time=9))
    stored = store.snapshot().job_by_id("default", "web")
    assert stored.stop and stored.version == 1 and stored.job_modify_index == idx and stored.submit_time == 9
    assert stored.status == "pending"  # its evals are not done yet


def test_deregister_purge_deletes_job_versions_and_summary(store):
    j = job()
    ev = evaluation(j)
    store.apply(JobRegister(job=j, eval=ev))
    store.apply(JobDeregister(namespace="default", job_id="web", purge=True))
    snap = store.snapshot()
    assert snap.job_by_id("default", "web") is None
    assert snap.job_versions("default", "web") == [] and snap.job_summary("default", "web") is None
    assert snap.eval_by_id(ev.id) is not None


def test_deregister_unknown_job_is_an_error_and_changes_nothing(store):
    before = store.latest_index
    with pytest.raises(StateError, match='job "nope"'):
        store.apply(JobDeregister(namespace="default", job_id="nope"))
    assert store.latest_index == before


def _place(store, j, ev, n, count=1):
    j = store.snapshot().job_by_id(j.namespace, j.id)  # plans carry the stored job
    allocs = [alloc(j, n.id, ev.id, idx=i) for i in range(count)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: allocs}, updated_at=1))
    return allocs


def test_status_running_with_alloc_then_dead_when_all_terminal():
    store = StateStore.open(None)
    j = job()
    n = node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    assert store.snapshot().job_by_id("default", "web").status == "pending"
    (a,) = _place(store, j, ev, n)
    assert store.snapshot().job_by_id("default", "web").status == "running"
    store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
    assert store.snapshot().job_by_id("default", "web").status == "running"
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="complete")]))
    assert store.snapshot().job_by_id("default", "web").status == "dead"


def test_status_pending_while_an_eval_is_not_terminal(store):
    j = job()
    ev = evaluation(j)
    store.apply(JobRegister(job=j, eval=ev))
    assert store.snapshot().job_by_id("default", "web").status == "pending"
    store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
    assert store.snapshot().job_by_id("default", "web").status == "dead"


def test_status_dead_after_eval_gc(store):
    j = job()
    ev = evaluation(j)
    store.apply(JobRegister(job=j, eval=ev))
    store.apply(EvalDelete(eval_ids=[ev.id]))
    assert store.snapshot().job_by_id("default", "web").status == "dead"


def test_new_job_without_evals_or_allocs_is_pending(store):
    store.apply(JobRegister(job=job()))
    assert store.snapshot().job_by_id("default", "web").status == "pending"


@pytest.mark.parametrize(
    "extra",
    [
        dict(type="system"),
        dict(type="batch", periodic=PeriodicConfig(spec="*/5 * * * *")),
        dict(type="batch", parameterized_job=ParameterizedJobConfig()),
    ],
)
def test_system_periodic_parameterized_run_until_stopped(store, extra):
    j = job("p", **extra)
    store.apply(JobRegister(job=j, eval=evaluation(j)))
    assert store.snapshot().job_by_id("default", "p").status == "running"
    store.apply(JobDeregister(namespace="default", job_id="p"))
    assert store.snapshot().job_by_id("default", "p").status == "dead"


def test_summary_counts_follow_client_status(store):
    j = job(groups=("web", "db"))
    n = node()
    ev = evaluation(j, queued_allocations={"web": 2, "db": 1})
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    s = store.snapshot().job_summary("default", "web")
    assert s.summary["web"].queued == 2 and s.summary["db"].queued == 1
    j = store.snapshot().job_by_id("default", "web")
    a1, a2 = alloc(j, n.id, ev.id, "web", 0), alloc(j, n.id, ev.id, "web", 1)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a1, a2]}))
    web = store.snapshot().job_summary("default", "web").summary["web"]
    assert (web.queued, web.starting) == (0, 2)
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a1.id, client_status="running")]))
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a2.id, client_status="failed")]))
    web = store.snapshot().job_summary("default", "web").summary["web"]
    assert (web.starting, web.running, web.failed) == (0, 1, 1)
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a1.id, client_status="complete")]))
    # the scheduler's stale copy says "pending": the stored client status is kept
    store.apply(PlanApply(eval_id=ev.id, node_update={n.id: [evolve(a2, desired_status="stop", job=None)]}))
    web = store.snapshot().job_summary("default", "web").summary["web"]
    assert (web.running, web.complete, web.failed, web.lost) == (0, 1, 1, 0)
    assert store.snapshot().alloc_by_id(a2.id).client_status == "failed"
    assert store.snapshot().job_summary("default", "web").summary["db"].queued == 1


def test_summary_lost_and_unknown_from_scheduler(store):
    j = job()
    n = node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    (a,) = _place(store, j, ev, n)
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running")]))
    store.apply(PlanApply(eval_id=ev.id, node_update={n.id: [evolve(a, desired_status="stop", client_status="lost")]}))
    web = store.snapshot().job_summary("default", "web").summary["web"]
    assert (web.running, web.lost) == (0, 1)


def test_summary_ignores_allocs_of_an_earlier_incarnation(store):
    j = job()
    n = node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    old_job = evolve(store.snapshot().job_by_id("default", "web"), create_index=0)
    store.apply(PlanApply(eval_id=ev.id, job=old_job, node_allocation={n.id: [alloc(old_job, n.id, ev.id)]}))
    assert store.snapshot().job_summary("default", "web").summary["web"].starting == 0


def test_summary_adds_new_task_groups_on_update(store):
    store.apply(JobRegister(job=job()))
    store.apply(JobRegister(job=job(groups=("web", "cache"))))
    assert set(store.snapshot().job_summary("default", "web").summary) == {"web", "cache"}


def test_parent_children_summary_counts_child_status(store):
    parent = job("cron", type="batch", periodic=PeriodicConfig(spec="@hourly"))
    store.apply(JobRegister(job=parent))
    child = job("cron/periodic-1", type="batch", parent_id="cron")
    ev = evaluation(child)
    store.apply(JobRegister(job=child, eval=ev))
    children = store.snapshot().job_summary("default", "cron").children
    assert (children.pending, children.running, children.dead) == (1, 0, 0)
    store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
    children = store.snapshot().job_summary("default", "cron").children
    assert (children.pending, children.dead) == (0, 1)


@pytest.mark.parametrize("seed", range(6))
def test_summary_counts_of_one_command_equal_those_of_one_command_per_update(seed):
    """Summaries are written once per command: the counts (clamped at zero on the way) must
    be what applying the same updates one command each gives."""
    import random

    rng = random.Random(seed)
    statuses = ["pending", "running", "failed", "complete", "lost", "unknown"]
    results = []
    updates = None
    for one_per_command in (True, False):
        s = StateStore.open(None)
        j = job(groups=("web", "db"), count=4)
        n = node(node_id="n1")
        ev = evaluation(j, id="eval-1", queued_allocations={"web": 4, "db": 4})
        s.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
        j = s.snapshot().job_by_id("default", "web")
        placed = [alloc(j, n.id, ev.id, g, i, id=f"alloc-{g}-{i}") for g in ("web", "db") for i in range(4)]
        s.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: placed}))
        if updates is None:
            updates = [AllocUpdate(id=rng.choice(placed).id, client_status=rng.choice(statuses)) for _ in range(30)]
        if one_per_command:
            for u in updates:
                s.apply(AllocClientUpdate(allocs=[u]))
        else:
            s.apply(AllocClientUpdate(allocs=updates))
        results.append(s.snapshot().job_summary("default", "web").summary)
        s.close()
    assert results[0] == results[1]
