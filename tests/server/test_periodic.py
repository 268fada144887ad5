"""The periodic dispatcher with a fake clock: launches on the cron schedule, children,
prohibit_overlap, enabled, time zones, force, and restore after a restart."""

from datetime import UTC, datetime

import pytest

from yurt.server import FakeClock, Server, ServerConfig
from yurt.server.endpoints import register_job
from yurt.server.periodic import next_launch
from yurt.state.commands import (
    AllocClientUpdate,
    AllocUpdate,
    EvalUpsert,
    JobDeregister,
)
from yurt.structs import PeriodicConfig, evolve
from yurt.testing.mock import mock_batch_job

# 2023-11-14T22:13:20Z, a Tuesday
START = 1_700_000_000.0


def periodic_job(job_id="report", **periodic):
    config = {"spec": "*/5 * * * *", "prohibit_overlap": False, "time_zone": "UTC"}
    config.update(periodic)
    return mock_batch_job(id=job_id, periodic=PeriodicConfig(**config))


async def make_server(tmp_path=None, clock=None):
    srv = Server(ServerConfig(num_schedulers=0, data_dir=str(tmp_path) if tmp_path else None),
                 clock=clock or FakeClock(START))
    await srv.start()
    return srv


@pytest.fixture
async def server():
    srv = await make_server()
    yield srv
    await srv.stop()


def children(server, parent="report"):
    snap = server.state.snapshot()
    return [j for j in snap.jobs("default") if j.parent_id == parent]


def finish_child_evals(server, child_id):
    snap = server.state.snapshot()
    done = [evolve(ev, status="complete") for ev in snap.evals_by_job("default", child_id)]
    server.state.apply(EvalUpsert(evals=done))


def test_next_launch_uses_the_time_zone_and_earliest_spec():
    job = periodic_job(spec="0 9 * * *", time_zone="America/New_York")
    # 09:00 in New York on 2023-11-15 is 14:00 UTC
    assert next_launch(job, START) == datetime(2023, 11, 15, 14, 0, tzinfo=UTC).timestamp()
    multi = periodic_job(spec="", specs=["0 0 * * *", "*/10 * * * *"])
    assert next_launch(multi, START) == datetime(2023, 11, 14, 22, 20, tzinfo=UTC).timestamp()
    seconds = periodic_job(spec="*/15 * * * * * *")  # 7 fields: seconds first
    assert next_launch(seconds, START) == START + 10


async def test_launches_child_on_schedule(server):
    register_job(server, periodic_job())
    assert server.periodic.next_launch_of("default", "report") == datetime(
        2023, 11, 14, 22, 15, tzinfo=UTC).timestamp()
    assert server.periodic.tick() == []
    server.clock.advance(99)  # 22:14:59
    assert server.periodic.tick() == []
    server.clock.advance(1)
    launched = server.periodic.tick()
    assert [entry.job_id for entry in launched] == ["report/periodic-1700000100"]
    child = server.state.snapshot().job_by_id("default", "report/periodic-1700000100")
    assert child.parent_id == "report" and child.periodic is None and child.name == child.id
    assert child.status == "pending" and child.version == 0
    ev = server.state.snapshot().eval_by_id(launched[0].eval.id)
    assert ev.triggered_by == "periodic-job" and ev.job_id == child.id
    row = server.state.snapshot().periodic_launch("default", "report")
    assert row.launch == 1_700_000_100 * 1_000_000_000
    summary = server.state.snapshot().job_summary("default", "report")
    assert summary.children.pending == 1
    # the parent is not scheduled itself and stays running
    parent = server.state.snapshot().job_by_id("default", "report")
    assert parent.status == "running" and not server.state.snapshot().evals_by_job("default", "report")
    server.clock.advance(300)
    assert [e.job_id for e in server.periodic.tick()] == ["report/periodic-1700000400"]


async def test_prohibit_overlap_skips_launch_while_a_child_runs(server):
    register_job(server, periodic_job(prohibit_overlap=True, spec="* * * * *"))
    server.clock.advance(40)  # 22:14:00
    first = server.periodic.tick()
    assert len(first) == 1
    server.clock.advance(60)
    assert server.periodic.tick() == []  # the first child's eval is still pending
    assert len(children(server)) == 1
    finish_child_evals(server, first[0].job_id)
    server.clock.advance(60)
    assert len(server.periodic.tick()) == 1
    assert len(children(server)) == 2


async def test_running_alloc_of_child_also_blocks_overlap(server):
    from yurt.state.commands import PlanApply
    from yurt.testing.mock import mock_alloc

    register_job(server, periodic_job(prohibit_overlap=True, spec="* * * * *"))
    server.clock.advance(40)
    child_id = server.periodic.tick()[0].job_id
    finish_child_evals(server, child_id)
    child = server.state.snapshot().job_by_id("default", child_id)
    alloc = mock_alloc(job=child, job_id=child_id, client_status="running")
    server.state.apply(PlanApply(job=child, node_allocation={alloc.node_id: [alloc]}))
    server.clock.advance(60)
    assert server.periodic.tick() == []
    server.state.apply(AllocClientUpdate(allocs=[AllocUpdate(id=alloc.id, client_status="complete")]))
    server.clock.advance(60)
    assert len(server.periodic.tick()) == 1


async def test_disabled_stopped_and_removed_jobs_are_not_launched(server):
    register_job(server, periodic_job(job_id="off", enabled=False))
    register_job(server, periodic_job(job_id="gone"))
    server.state.apply(JobDeregister(namespace="default", job_id="gone", purge=False))
    register_job(server, periodic_job(job_id="purged"))
    server.state.apply(JobDeregister(namespace="default", job_id="purged", purge=True))
    assert server.periodic.tracked == {}
    server.clock.advance(3600)
    assert server.periodic.tick() == []
    assert server.state.snapshot().periodic_launch("default", "purged") is None


async def test_force_launches_now_even_when_overlap_is_prohibited(server):
    register_job(server, periodic_job(prohibit_overlap=True))
    first = server.periodic.force("default", "report")
    assert first.job_id == f"report/periodic-{int(START)}"
    server.clock.advance(1)
    second = server.periodic.force("default", "report")
    assert second.job_id == f"report/periodic-{int(START) + 1}"
    assert len(children(server)) == 2


async def test_restart_launches_a_missed_launch_once_and_never_twice(tmp_path):
    clock = FakeClock(START)
    srv = await make_server(tmp_path, clock)
    register_job(srv, periodic_job(spec="*/5 * * * *"))
    clock.advance(100)  # 22:15:00
    assert len(srv.periodic.tick()) == 1
    await srv.stop()

    # back before the next launch (22:20): nothing is launched on restore
    clock.advance(200)
    srv = await make_server(tmp_path, clock)
    try:
        assert srv.periodic.tick() == [] and len(children(srv)) == 1
        assert srv.periodic.next_launch_of("default", "report") == START + 400
    finally:
        await srv.stop()

    # down across the 22:20 and 22:25 launches: one catch-up launch, at restore time
    clock.advance(500)
    srv = await make_server(tmp_path, clock)
    try:
        kids = sorted(j.id for j in children(srv))
        assert kids == ["report/periodic-1700000100", f"report/periodic-{int(clock.now())}"]
        assert srv.periodic.tick() == []
    finally:
        await srv.stop()


async def test_restart_after_register_without_launch_uses_insertion_time(tmp_path):
    clock = FakeClock(START)
    srv = await make_server(tmp_path, clock)
    register_job(srv, periodic_job(spec="*/5 * * * *"))
    await srv.stop()
    clock.advance(50)  # before the first launch at 22:15
    srv = await make_server(tmp_path, clock)
    try:
        assert children(srv) == []
    finally:
        await srv.stop()
    clock.advance(100)  # after it
    srv = await make_server(tmp_path, clock)
    try:
        assert len(children(srv)) == 1
    finally:
        await srv.stop()


async def test_leadership_loss_stops_tracking(server):
    register_job(server, periodic_job())
    await server.revoke_leadership()
    assert server.periodic.tracked == {}
    await server.establish_leadership()
    assert ("default", "report") in server.periodic.tracked


def test_launch_rows_and_scaling_events_survive_a_snapshot_restore(tmp_path):
    from yurt.state import StateStore
    from yurt.state.commands import (
        JobRegister,
        PeriodicLaunchUpsert,
        ScalingEventRegister,
    )
    from yurt.state.scaling_events import ScalingEvent

    store = StateStore.open(str(tmp_path))
    job = periodic_job()
    store.apply(JobRegister(job=job, submit_time=5))
    assert store.snapshot().periodic_launch("default", "report").launch == 5  # first insertion
    store.apply(PeriodicLaunchUpsert(namespace="default", job_id="report", launch=7_000_000_000))
    for n in range(25):
        store.apply(ScalingEventRegister(namespace="default", job_id="report", task_group="web",
                                         event=ScalingEvent(time=n, count=n, message=f"m{n}")))
    store.write_snapshot()
    store.close()
    store = StateStore.open(str(tmp_path))
    try:
        snap = store.snapshot()
        assert snap.periodic_launch("default", "report").launch == 7_000_000_000
        events = snap.scaling_events("default", "report").events["web"]
        assert len(events) == 20 and events[0].message == "m24" and events[-1].message == "m5"
        store.apply(JobDeregister(namespace="default", job_id="report", purge=True))
        snap = store.snapshot()
        assert snap.periodic_launch("default", "report") is None and snap.scaling_events("default", "report") is None
    finally:
        store.close()


@pytest.mark.parametrize("spec, expected", [
    ("0 0 L * *", "2023-11-30T00:00:00"),      # last day of the month
    ("0 0 LW * *", "2023-11-30T00:00:00"),     # last weekday (Thursday)
    ("0 0 LW 12 *", "2023-12-29T00:00:00"),    # Dec 31 2023 is a Sunday -> Friday 29th
    ("0 0 18W * *", "2023-11-17T00:00:00"),    # the 18th is a Saturday -> Friday 17th
    ("0 0 1W 4 * 2023", None),                 # past: no launch
    ("0 0 1W 4 *", "2024-04-01T00:00:00"),     # Monday already
    ("0 0 * * 5L", "2023-11-24T00:00:00"),     # last Friday of November
    ("0 0 * * 1#3", "2023-11-20T00:00:00"),    # third Monday
    ("0 0 * * 2#3", "2023-11-21T00:00:00"),    # third Tuesday (START is the 14th, the 2nd Tuesday)
    ("0 0 1,L * *", "2023-11-30T00:00:00"),
])
def test_cron_day_forms(spec, expected):
    from yurt.structs.cron import next_launch_after

    got = next_launch_after(spec, None, "UTC", START)
    assert (got.strftime("%Y-%m-%dT%H:%M:%S") if got else None) == expected


def test_cron_seconds_late_in_the_day():
    from yurt.structs.cron import next_launch_after

    late = datetime(2023, 11, 14, 23, 59, 58, 500000, tzinfo=UTC).timestamp()
    assert next_launch_after("* * * * * * *", None, "UTC", late).timestamp() == late + 0.5
    assert next_launch_after("30 * * * * * *", None, "UTC", late).timestamp() == datetime(
        2023, 11, 15, 0, 0, 30, tzinfo=UTC).timestamp()
    assert next_launch_after("*/20 59 23 * * * *", None, "UTC", late - 30).timestamp() == late - 18.5


async def test_dispatched_child_of_a_periodic_parameterized_job_is_what_launches(server):
    from yurt.server.endpoints.dispatch import dispatch_job
    from yurt.structs import ParameterizedJobConfig

    template = evolve(periodic_job(job_id="tmpl"), parameterized_job=ParameterizedJobConfig())
    register_job(server, template)
    assert server.periodic.tracked == {}  # the template itself never launches
    result = dispatch_job(server, "default", "tmpl")
    assert result.eval_id == ""  # a periodic child is not scheduled itself
    assert ("default", result.dispatched_job_id) in server.periodic.tracked
    server.clock.advance(100)
    launched = server.periodic.tick()
    assert [e.job_id for e in launched] == [f"{result.dispatched_job_id}/periodic-1700000100"]
