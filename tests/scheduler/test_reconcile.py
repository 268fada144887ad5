"""The reconciler alone: allocs in, buckets out (no nodes chosen, no state read)."""

from yurt.scheduler.reconcile import Reconciler, default_update_fn
from yurt.scheduler.update import tasks_updated
from yurt.structs import SECOND, evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node

NOW = 1_700_000_000 * 10**9


def _allocs(job, n, node=None):
    node = node or mock_node()
    return [mock_alloc(job, node, index=i, job_version=job.version) for i in range(n)]


def _run(job, allocs, tainted=None):
    return Reconciler(job, allocs, tainted or {}, "eval-1", 50, NOW).compute()


def test_empty_job_places_count_with_names():
    job = mock_job(id="web")
    r = _run(job, [])
    assert [p.name for p in r.place] == [f"web.web[{i}]" for i in range(10)]
    assert r.desired_tg_updates["web"].place == 10 and not r.stop


def test_duplicate_names_are_stopped_first():
    job = mock_job(id="web")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=2)])
    allocs = _allocs(job, 2)
    dup = mock_alloc(job, mock_node(), index=0, job_version=job.version)
    r = _run(job, allocs + [dup])
    assert [s.alloc.id for s in r.stop] == [dup.id]
    assert not r.place


def test_stop_everything_for_missing_job():
    job = mock_job()
    allocs = _allocs(job, 3)
    allocs[0] = evolve(allocs[0], client_status="complete")  # terminal: nothing to stop
    r = Reconciler(None, allocs, {}, "e", 50, NOW).compute()
    assert len(r.stop) == 2 and not r.place


def test_lost_allocs_on_missing_node():
    job = mock_job()
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=2)])
    node = mock_node()
    allocs = _allocs(job, 2, node)
    r = _run(job, allocs, tainted={node.id: None})
    assert sorted(s.client_status for s in r.stop) == ["lost", "lost"]
    assert sorted(p.name for p in r.place) == sorted(a.name for a in allocs)
    assert all(p.kind == "lost" for p in r.place)


def test_failed_service_alloc_is_rescheduled_now_or_later():
    job = mock_job()
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=1)])
    (alloc,) = _allocs(job, 1)
    now_failed = evolve(alloc, client_status="failed", modify_time=NOW - 30 * SECOND)
    r = _run(job, [now_failed])
    assert [p.kind for p in r.place] == ["reschedule"] and r.place[0].reschedule
    later_failed = evolve(alloc, client_status="failed", modify_time=NOW)
    r = _run(job, [later_failed])
    assert not r.place and len(r.followup_evals) == 1
    assert r.attribute_updates[0].followup_eval_id == r.followup_evals[0].id


def test_followup_evals_are_batched_by_window():
    job = mock_job()
    allocs = _allocs(job, 3)
    failed = [
        evolve(allocs[0], client_status="failed", modify_time=NOW),
        evolve(allocs[1], client_status="failed", modify_time=NOW + 2 * SECOND),
        evolve(allocs[2], client_status="failed", modify_time=NOW + 60 * SECOND),
    ]
    r = _run(job, failed + _allocs(job, 10)[3:])
    assert len(r.followup_evals) == 2


def test_tasks_updated_rules():
    job = mock_job()
    tg = job.task_groups[0]
    task = tg.tasks[0]

    def changed(**task_fields):
        return evolve(job, task_groups=[evolve(tg, tasks=[evolve(task, **task_fields)])])

    assert not tasks_updated(job, evolve(job, priority=90), "web")
    assert not tasks_updated(job, changed(kill_timeout=99 * SECOND), "web")
    assert not tasks_updated(job, evolve(job, task_groups=[evolve(tg, count=99)]), "web")
    assert tasks_updated(job, changed(env={"X": "1"}), "web")
    assert tasks_updated(job, changed(config={"command": "/bin/false"}), "web")
    assert tasks_updated(job, changed(driver="raw_exec"), "web")
    assert tasks_updated(job, changed(meta={"foo": "baz"}), "web")
    assert tasks_updated(job, evolve(job, meta={"owner": "someone"}), "web")  # combined meta
    assert tasks_updated(job, changed(resources=evolve(task.resources, memory_mb=512)), "web")
    assert tasks_updated(job, evolve(job, task_groups=[evolve(tg, networks=None)]), "web")


def test_default_update_fn_is_destructive_without_old_job():
    job = mock_job()
    alloc = evolve(mock_alloc(job), job=None)
    assert default_update_fn(alloc, job, job.task_groups[0]) == "destructive"
