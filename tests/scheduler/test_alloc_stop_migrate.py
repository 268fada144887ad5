"""`alloc stop` (DesiredTransition.Migrate on an alloc of a healthy node) is stopped and
replaced, as Nomad's reconciler migrates every non-terminal alloc marked for migration."""

from yurt.scheduler.reconcile import Reconciler
from yurt.structs import DesiredTransition, evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node

NOW = 1_700_000_000 * 10**9


def test_alloc_marked_for_migration_on_a_healthy_node_is_replaced():
    job = mock_job(id="web")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=2)])
    node = mock_node()
    allocs = [mock_alloc(job, node, index=i, job_version=job.version) for i in range(2)]
    allocs[0] = evolve(allocs[0], desired_transition=DesiredTransition(migrate=True))
    r = Reconciler(job, allocs, {}, "eval-1", 50, NOW).compute()
    assert not r.stop  # the old alloc is stopped only once its replacement is placed
    assert len(r.place) == 1 and r.place[0].kind == "migrate" and r.place[0].previous.id == allocs[0].id
    assert r.place[0].stop_previous == "alloc is being migrated"
    assert r.desired_tg_updates["web"].migrate == 1


def test_terminal_alloc_marked_for_migration_is_left_alone():
    job = mock_job(id="web")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=1)])
    done = evolve(mock_alloc(job, mock_node(), index=0, job_version=job.version), client_status="failed",
                  desired_status="stop", desired_transition=DesiredTransition(migrate=True))
    r = Reconciler(job, [done], {}, "eval-1", 50, NOW).compute()
    assert not [p for p in r.place if p.kind == "migrate"]
