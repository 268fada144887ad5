"""The drainer's decisions (pure, fake time) and its loop on a server with a fake clock."""

import pytest

from yurt.server import FakeClock, Server, ServerConfig
from yurt.server.drainer import compute_drain, force_deadline_ns, with_deadline
from yurt.server.endpoints import drain_node
from yurt.state.commands import JobRegister, NodeRegister, PlanApply
from yurt.structs import (
    SECOND,
    AllocDeploymentStatus,
    DesiredTransition,
    DrainStrategy,
    MigrateStrategy,
    TaskEvent,
    TaskState,
    evolve,
)
from yurt.testing.mock import (
    mock_alloc,
    mock_batch_job,
    mock_group,
    mock_job,
    mock_node,
    mock_system_job,
)

NOW = 1_700_000_000 * SECOND


class Snap:
    """The few read methods the drainer uses, over plain lists."""

    def __init__(self, jobs, allocs):
        self.jobs = {(j.namespace, j.id): j for j in jobs}
        self.allocs = list(allocs)

    def job_by_id(self, ns, job_id):
        return self.jobs.get((ns, job_id))

    def allocs_by_job(self, ns, job_id):
        return [a for a in self.allocs if a.namespace == ns and a.job_id == job_id]

    def allocs_by_node(self, node_id):
        return [a for a in self.allocs if a.node_id == node_id]


def draining(node, deadline=0, ignore_system=False, started=NOW):
    strategy = with_deadline(DrainStrategy(deadline=deadline, ignore_system_jobs=ignore_system), started)
    return evolve(node, drain_strategy=strategy)


def running(alloc, since=NOW - 60 * SECOND):
    states = {t.name: TaskState(state="running", events=[TaskEvent(type="Started", time=since)])
              for t in alloc.job.task_groups[0].tasks}
    return evolve(alloc, client_status="running", task_states=states)


def service(count=3, max_parallel=1, min_healthy=10 * SECOND):
    migrate = MigrateStrategy(max_parallel=max_parallel, health_check="task_states", min_healthy_time=min_healthy)
    return mock_job(task_groups=[mock_group(count=count, migrate=migrate)])


def ids(allocs):
    return sorted(a.id for a in allocs)


def test_max_parallel_one_moves_one_alloc_at_a_time():
    job = service(count=3, max_parallel=1)
    node, other = draining(mock_node()), mock_node()
    allocs = [running(mock_alloc(job, node, i)) for i in range(3)]
    first = compute_drain(Snap([job], allocs), [node], NOW)
    assert len(first.migrate) == 1 and not first.complete
    marked = first.migrate[0]
    allocs = [evolve(a, desired_transition=DesiredTransition(migrate=True)) if a.id == marked.id else a
              for a in allocs]
    assert compute_drain(Snap([job], allocs), [node], NOW).migrate == []  # one in flight
    # The scheduler stops it and places a replacement that is not healthy yet.
    allocs = [evolve(a, desired_status="stop") if a.id == marked.id else a for a in allocs]
    fresh = running(mock_alloc(job, other, 0), since=NOW)
    allocs.append(fresh)
    assert compute_drain(Snap([job], allocs), [node], NOW + 5 * SECOND).migrate == []
    # min_healthy_time later the replacement counts as healthy: the next one may go.
    later = compute_drain(Snap([job], allocs), [node], NOW + 10 * SECOND)
    assert len(later.migrate) == 1 and later.migrate[0].id != marked.id


def test_max_parallel_two_moves_two_and_client_health_verdict_counts():
    job = service(count=4, max_parallel=2)
    node = draining(mock_node())
    allocs = [running(mock_alloc(job, node, i)) for i in range(4)]
    assert len(compute_drain(Snap([job], allocs), [node], NOW).migrate) == 2
    # Just started, but the client already set DeploymentStatus.Healthy on each.
    young = [evolve(running(a, since=NOW), deployment_status=AllocDeploymentStatus(healthy=True)) for a in allocs]
    assert len(compute_drain(Snap([job], young), [node], NOW).migrate) == 2
    unproven = [running(a, since=NOW) for a in allocs]
    assert compute_drain(Snap([job], unproven), [node], NOW).migrate == []


def test_deadline_forces_everything_left_at_once():
    job, batch = service(count=3), mock_batch_job()
    node = draining(mock_node(), deadline=30 * SECOND)
    allocs = [running(mock_alloc(job, node, i)) for i in range(3)]
    allocs.append(running(mock_alloc(batch, node, 0)))
    before = compute_drain(Snap([job, batch], allocs), [node], NOW + 29 * SECOND)
    assert len(before.migrate) == 1 and before.migrate[0].job_id == job.id  # batch waits
    after = compute_drain(Snap([job, batch], allocs), [node], NOW + 30 * SECOND)
    assert ids(after.migrate) == ids(allocs)


def test_force_marks_all_immediately_and_no_deadline_never_forces():
    job = service(count=3)
    forced = draining(mock_node(), deadline=-1)
    allocs = [running(mock_alloc(job, forced, i)) for i in range(3)]
    assert ids(compute_drain(Snap([job], allocs), [forced], NOW).migrate) == ids(allocs)
    assert force_deadline_ns(forced.drain_strategy) == NOW
    open_ended = draining(mock_node(), deadline=0)
    assert force_deadline_ns(open_ended.drain_strategy) is None
    allocs = [running(mock_alloc(job, open_ended, i), since=NOW) for i in range(3)]
    assert len(compute_drain(Snap([job], allocs), [open_ended], NOW + 10**6 * SECOND).migrate) == 1  # never forced


def test_system_allocs_go_last_unless_ignored():
    job, system = service(count=1), mock_system_job()
    node = draining(mock_node())
    svc = running(mock_alloc(job, node, 0))
    sys_alloc = running(mock_alloc(system, node, 0))
    first = compute_drain(Snap([job, system], [svc, sys_alloc]), [node], NOW)
    assert ids(first.migrate) == [svc.id]
    gone = evolve(svc, desired_status="stop")
    second = compute_drain(Snap([job, system], [gone, sys_alloc]), [node], NOW)
    assert ids(second.migrate) == [sys_alloc.id] and not second.complete
    stopped = evolve(sys_alloc, desired_status="stop")
    assert compute_drain(Snap([job, system], [gone, stopped]), [node], NOW).complete == [node.id]
    ignoring = draining(mock_node(), ignore_system=True)
    sys_kept = running(mock_alloc(system, ignoring, 0))
    result = compute_drain(Snap([system], [sys_kept]), [ignoring], NOW)
    assert result.migrate == [] and result.complete == [ignoring.id]


def test_batch_alloc_holds_the_drain_until_it_finishes():
    batch = mock_batch_job()
    node = draining(mock_node())
    alloc = running(mock_alloc(batch, node, 0))
    result = compute_drain(Snap([batch], [alloc]), [node], NOW)
    assert result.migrate == [] and result.complete == []
    done = evolve(alloc, client_status="complete")
    assert compute_drain(Snap([batch], [done]), [node], NOW).complete == [node.id]


# --- the loop on a real (in-memory) server --------------------------------------------


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=0), clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


async def test_drain_sets_last_drain_and_completes_leaving_the_node_ineligible(server):
    node = evolve(mock_node(), status="ready")
    server.state.apply(NodeRegister(node=node))
    job = service(count=1)
    server.state.apply(JobRegister(job=job, eval=None, submit_time=server.now_ns()))
    alloc = running(mock_alloc(job, node, 0), since=server.now_ns() - 60 * SECOND)
    server.state.apply(PlanApply(eval_id="e", job=job, node_allocation={node.id: [alloc]},
                                 updated_at=server.now_ns()))
    drain_node(server, node.id, DrainStrategy(deadline=3600 * SECOND), False, {"message": "kernel"})
    stored = server.state.snapshot().node_by_id(node.id)
    assert stored.scheduling_eligibility == "ineligible"
    assert stored.last_drain["Status"] == "draining" and stored.last_drain["Meta"] == {"message": "kernel"}
    assert stored.events[-1].message == "Node drain strategy set"
    server.run_timers()
    snap = server.state.snapshot()
    assert snap.alloc_by_id(alloc.id).desired_transition.migrate is True
    assert any(e.triggered_by == "node-drain" and e.job_id == job.id for e in snap.evals(None))
    assert snap.node_by_id(node.id).drain_strategy is not None
    server.state.apply(PlanApply(eval_id="e2", job=job, updated_at=server.now_ns(),
                                 node_update={node.id: [evolve(alloc, desired_status="stop")]}))
    server.clock.advance(2)
    server.run_timers()
    done = server.state.snapshot().node_by_id(node.id)
    assert done.drain_strategy is None and done.scheduling_eligibility == "ineligible"
    assert done.last_drain["Status"] == "complete" and done.last_drain["Meta"] == {"message": "kernel"}
    assert done.events[-1].message == "Node drain complete"
    assert node.id not in server.draining_nodes


async def test_cancel_marks_eligible_unless_kept_ineligible(server):
    node = evolve(mock_node(), status="ready")
    server.state.apply(NodeRegister(node=node))
    drain_node(server, node.id, DrainStrategy(deadline=-1), False)
    drain_node(server, node.id, None, True)
    canceled = server.state.snapshot().node_by_id(node.id)
    assert canceled.drain_strategy is None and canceled.scheduling_eligibility == "eligible"
    assert canceled.last_drain["Status"] == "canceled"
    assert canceled.events[-1].message == "Node drain disabled"
    drain_node(server, node.id, DrainStrategy(deadline=-1), False)
    drain_node(server, node.id, None, False)
    assert server.state.snapshot().node_by_id(node.id).scheduling_eligibility == "ineligible"


def test_drain_times_follow_nomad():
    strategy = with_deadline(DrainStrategy(deadline=90 * SECOND), NOW)
    assert strategy.started_at == "2023-11-14T22:13:20Z" and strategy.force_deadline == "2023-11-14T22:14:50Z"
    assert force_deadline_ns(strategy) == NOW + 90 * SECOND
    forced = with_deadline(DrainStrategy(deadline=-1), NOW + 5 * SECOND, previous=strategy)
    assert forced.force_deadline == "0001-01-01T00:00:00Z" and forced.started_at == strategy.started_at
    assert force_deadline_ns(forced) == NOW


def test_replacement_without_verdict_counts_after_healthy_deadline():
    migrate = MigrateStrategy(max_parallel=1, min_healthy_time=10 * SECOND, healthy_deadline=60 * SECOND)
    job = mock_job(task_groups=[mock_group(count=2, migrate=migrate)])
    node, other = draining(mock_node()), mock_node()
    old = running(mock_alloc(job, node, 0))
    stuck = evolve(mock_alloc(job, other, 1), client_status="pending", create_time=NOW)
    assert compute_drain(Snap([job], [old, stuck]), [node], NOW + 59 * SECOND).migrate == []
    assert ids(compute_drain(Snap([job], [old, stuck]), [node], NOW + 60 * SECOND).migrate) == [old.id]


async def test_eligibility_toggle_records_events_and_is_a_no_op_when_unchanged(server):
    from yurt.server.endpoints import set_node_eligibility

    node = evolve(mock_node(), status="ready")
    server.state.apply(NodeRegister(node=node))
    _, index = set_node_eligibility(server, node.id, "ineligible")
    stored = server.state.snapshot().node_by_id(node.id)
    assert stored.scheduling_eligibility == "ineligible"
    assert stored.events[-1].message == "Node marked as ineligible for scheduling"
    assert set_node_eligibility(server, node.id, "ineligible") == ([], index)
    set_node_eligibility(server, node.id, "eligible")
    assert server.state.snapshot().node_by_id(node.id).events[-1].message == "Node marked as eligible for scheduling"
