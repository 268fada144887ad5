"""System and sysbatch jobs on a disconnected node (Nomad's disconnect rules for the node
reconciler): unknown while disconnected, never replaced on another node, lost after
`lost_after`, kept (not restarted) when the client reports them again."""

import pytest

from yurt.structs import SECOND, Disconnect, TaskEvent, TaskState, evolve
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_system_job

from .helpers import cluster, placed, run_job, stopped

LOST_AFTER = 60 * SECOND


def system_job(job_type="system", block=True):
    job = mock_system_job()
    job = evolve(job, type=job_type)
    if block:
        tg = job.task_groups[0]
        job = evolve(job, task_groups=[evolve(tg, disconnect=Disconnect(lost_after=LOST_AFTER, replace=True))])
    return job


def setup(job, nodes=3):
    h = cluster(nodes)
    job, _ = run_job(h, job)
    for alloc in h.job_allocs(job):
        states = {t.name: TaskState(state="running", events=[TaskEvent(type="Started", time=h.now_ns - SECOND)])
                  for t in job.task_groups[0].tasks}
        h.state.upsert_alloc(evolve(alloc, client_status="running", task_states=states))
    return h, job, sorted(h.job_allocs(job), key=lambda a: a.node_id)


def set_status(h: Harness, node_id: str, status: str):
    h.state.upsert_node(evolve(h.state.node_by_id(node_id), status=status))


def evaluate(h, job, trigger="node-update"):
    plans = len(h.plans)
    h.process(h.new_eval(job, trigger))
    return len(h.plans) > plans


@pytest.mark.parametrize("job_type", ["system", "sysbatch"])
def test_disconnected_node_makes_its_alloc_unknown_without_replacement(job_type):
    h, job, allocs = setup(system_job(job_type))
    assert len(allocs) == 3
    gone = allocs[0]
    set_status(h, gone.node_id, "disconnected")
    assert evaluate(h, job)
    assert [(a.id, a.client_status) for a in placed(h)] == [(gone.id, "unknown")]
    assert placed(h)[0].alloc_states[-1].value == "unknown"
    assert stopped(h) == []
    assert len(h.job_allocs(job)) == 3  # no replacement on another node: one per node
    (follow,) = [e for e in h.created_evals if e.triggered_by == "max-disconnect-timeout"]
    assert follow.wait_until == h.now_ns + LOST_AFTER and follow.type == job_type
    assert h.plans[-1].annotations.desired_tg_updates[gone.task_group].disconnect == 1
    assert not evaluate(h, job)  # still disconnected, within lost_after: nothing more


def test_unknown_alloc_is_lost_after_lost_after():
    h, job, allocs = setup(system_job())
    gone = allocs[0]
    set_status(h, gone.node_id, "disconnected")
    evaluate(h, job)
    h.now_ns += LOST_AFTER
    assert evaluate(h, job, "max-disconnect-timeout")
    assert [(a.id, a.client_status) for a in stopped(h)] == [(gone.id, "lost")]
    assert placed(h) == []


def test_reconnected_alloc_is_kept_not_restarted():
    h, job, allocs = setup(system_job())
    gone = allocs[0]
    set_status(h, gone.node_id, "disconnected")
    evaluate(h, job)
    set_status(h, gone.node_id, "ready")
    assert not evaluate(h, job)  # back, but its client has not reported yet: wait, place nothing
    h.state.upsert_alloc(evolve(h.state.alloc_by_id(gone.id), client_status="running"))
    assert evaluate(h, job, "reconnect")
    (update,) = placed(h)
    assert update.id == gone.id and update.desired_status == "run" and update.alloc_states[-1].value == "running"
    assert stopped(h) == []
    assert h.plans[-1].annotations.desired_tg_updates[gone.task_group].reconnect == 1
    assert sorted(a.id for a in h.job_allocs(job)) == sorted(a.id for a in allocs)
    assert not evaluate(h, job)  # settled


def test_without_disconnect_block_system_allocs_are_still_lost():
    h, job, allocs = setup(system_job(block=False))
    gone = allocs[0]
    set_status(h, gone.node_id, "disconnected")
    evaluate(h, job)
    assert [(a.id, a.client_status) for a in stopped(h)] == [(gone.id, "lost")]
    assert placed(h) == []
