"""Disconnected clients: unknown instead of lost, replacements per `replace`, lost after
`lost_after`, and reconnect resolution per `reconcile` (scheduler harness, fixed time);
plus the server's heartbeat invalidation (disconnected, then down) on a fake clock."""

import pytest

from yurt.scheduler.disconnect import (
    ALLOC_RECONNECTED,
    pick_reconnected,
    with_client_status,
)
from yurt.structs import (
    SECOND,
    AllocMetric,
    Disconnect,
    NodeScoreMeta,
    TaskEvent,
    TaskState,
    evolve,
)
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_node

from .helpers import cluster, placed, run_job, small_job, stopped

LOST_AFTER = 60 * SECOND


def disconnect_job(count=1, **block):
    job = small_job(count)
    tg = job.task_groups[0]
    fields = {"lost_after": LOST_AFTER, "replace": True, "reconcile": "best_score"}
    fields.update(block)
    return evolve(job, task_groups=[evolve(tg, disconnect=Disconnect(**fields))])


def running(alloc, started):
    states = {"web": TaskState(state="running", events=[TaskEvent(type="Started", time=started)])}
    return evolve(alloc, client_status="running", task_states=states)


def setup(job, nodes=2):
    h = cluster(nodes)
    job, _ = run_job(h, job)
    allocs = h.job_allocs(job)
    for alloc in allocs:
        h.state.upsert_alloc(running(alloc, h.now_ns - 100 * SECOND))
    return h, job, h.job_allocs(job)


def set_node_status(h: Harness, node_id: str, status: str):
    h.state.upsert_node(evolve(h.state.node_by_id(node_id), status=status))


def disconnect(h: Harness, job, node_id: str):
    set_node_status(h, node_id, "disconnected")
    h.process(h.new_eval(job, "node-update"))


def test_disconnected_node_makes_allocs_unknown_and_replaces_them():
    h, job, (alloc,) = setup(disconnect_job())
    disconnect(h, job, alloc.node_id)
    updates = [a for a in placed(h) if a.id == alloc.id]
    (new,) = [a for a in placed(h) if a.id != alloc.id]
    assert [u.client_status for u in updates] == ["unknown"]
    assert updates[0].alloc_states[-1].field == "ClientStatus" and updates[0].alloc_states[-1].value == "unknown"
    assert new.previous_allocation == alloc.id and new.node_id != alloc.node_id and new.name == alloc.name
    assert stopped(h) == []  # the original is not stopped
    (follow,) = [e for e in h.created_evals if e.triggered_by == "max-disconnect-timeout"]
    assert follow.wait_until == h.now_ns + LOST_AFTER
    assert h.plans[-1].annotations.desired_tg_updates["web"].disconnect == 1
    # While still disconnected and within lost_after, nothing more happens.
    h.process(h.new_eval(job, "node-update"))
    assert len(h.plans) == 2


def test_replace_false_keeps_the_slot_without_a_replacement():
    h, job, (alloc,) = setup(disconnect_job(replace=False))
    disconnect(h, job, alloc.node_id)
    assert [(a.id, a.client_status) for a in placed(h)] == [(alloc.id, "unknown")]
    h.process(h.new_eval(job, "node-update"))
    assert len(h.plans) == 2  # still nothing to place


def test_without_disconnect_block_allocs_are_lost_and_max_client_disconnect_acts_as_lost_after():
    h, job, (alloc,) = setup(small_job(1))
    disconnect(h, job, alloc.node_id)
    assert [(a.id, a.client_status) for a in stopped(h)] == [(alloc.id, "lost")]
    job = small_job(1)
    job = evolve(job, task_groups=[evolve(job.task_groups[0], max_client_disconnect=LOST_AFTER)])
    h, job, (alloc,) = setup(job)
    disconnect(h, job, alloc.node_id)
    assert stopped(h) == [] and {a.client_status for a in placed(h) if a.id == alloc.id} == {"unknown"}


def test_unknown_alloc_is_lost_after_lost_after_without_a_second_replacement():
    h, job, (alloc,) = setup(disconnect_job())
    disconnect(h, job, alloc.node_id)
    h.now_ns += LOST_AFTER
    h.process(h.new_eval(job, "max-disconnect-timeout"))
    assert [(a.id, a.client_status) for a in stopped(h)] == [(alloc.id, "lost")]
    assert placed(h) == []
    assert len(h.job_allocs(job)) == 1


def test_lost_alloc_with_stop_on_client_after_is_replaced_once_its_client_has_stopped_it():
    job = small_job(1)
    tg = job.task_groups[0]
    job = evolve(job, task_groups=[evolve(tg, disconnect=Disconnect(stop_on_client_after=30 * SECOND))])
    h, job, (alloc,) = setup(job)
    set_node_status(h, alloc.node_id, "down")
    h.process(h.new_eval(job, "node-update"))
    (lost,) = stopped(h)
    assert (lost.id, lost.client_status) == (alloc.id, "lost") and placed(h) == []
    (follow,) = [e for e in h.created_evals if e.id == lost.followup_eval_id]
    assert follow.wait_until == h.now_ns + 30 * SECOND + 5 * SECOND  # delay + kill timeout
    # As the state stores it: stopped, lost, with its follow-up eval.
    h.state.upsert_alloc(evolve(h.state.alloc_by_id(alloc.id), followup_eval_id=follow.id, modify_time=h.now_ns))
    plans = len(h.plans)
    h.process(h.new_eval(job, "node-update"))  # another eval meanwhile: the slot stays held
    assert len(h.plans) == plans
    h.now_ns = follow.wait_until
    h.process(follow)
    (new,) = placed(h)
    assert new.node_id != alloc.node_id and new.name == alloc.name


def reconnect(h: Harness, job, alloc):
    """The node is back and the client reported the alloc running again."""
    set_node_status(h, alloc.node_id, "ready")
    h.process(h.new_eval(job, "node-update"))  # before the client reports: nothing to do
    plans = len(h.plans)
    back = h.state.alloc_by_id(alloc.id)
    h.state.upsert_alloc(evolve(back, client_status="running"))
    h.process(h.new_eval(job, "reconnect"))
    return plans


def test_reconnect_keep_original_stops_the_replacement_and_keeps_the_tasks():
    h, job, (alloc,) = setup(disconnect_job(reconcile="keep_original"))
    disconnect(h, job, alloc.node_id)
    (replacement,) = [a for a in h.job_allocs(job) if a.id != alloc.id]
    plans_before = reconnect(h, job, alloc)
    assert plans_before == 2
    assert [(a.id, a.desired_description) for a in stopped(h)] == [(replacement.id, ALLOC_RECONNECTED)]
    (update,) = placed(h)
    assert update.id == alloc.id and update.desired_status == "run"
    assert update.alloc_states[-1].value == "running"
    assert h.plans[-1].annotations.desired_tg_updates["web"].reconnect == 1
    assert [a.id for a in h.job_allocs(job)] == [alloc.id]
    h.process(h.new_eval(job, "node-update"))  # settled: the original no longer needs reconnecting
    assert len(h.plans) == 3


def test_reconnect_keep_replacement_stops_the_original():
    h, job, (alloc,) = setup(disconnect_job(reconcile="keep_replacement"))
    disconnect(h, job, alloc.node_id)
    (replacement,) = [a for a in h.job_allocs(job) if a.id != alloc.id]
    reconnect(h, job, alloc)
    assert [(a.id, a.desired_description) for a in stopped(h)] == [(alloc.id, ALLOC_RECONNECTED)]
    assert [a.id for a in h.job_allocs(job)] == [replacement.id]


def test_reconnect_choice_best_score_and_longest_running():
    original = running(_alloc("n1", 0.4), 100)
    replacement = running(_alloc("n2", 0.9), 200)
    best = Disconnect(lost_after=LOST_AFTER, reconcile="best_score")
    assert pick_reconnected(original, replacement, best) is replacement
    assert pick_reconnected(original, evolve(replacement, metrics=original.metrics), best) is original
    longest = Disconnect(lost_after=LOST_AFTER, reconcile="longest_running")
    assert pick_reconnected(original, replacement, longest) is original
    assert pick_reconnected(running(original, 300), replacement, longest) is replacement
    pending = evolve(replacement, client_status="pending")
    assert pick_reconnected(original, pending, Disconnect(reconcile="keep_replacement")) is pending
    assert pick_reconnected(original, None, best) is original


def _alloc(node_id, score):
    from yurt.testing.mock import mock_alloc

    alloc = mock_alloc(node=mock_node(id=node_id))
    return evolve(alloc, metrics=AllocMetric(score_meta_data=[NodeScoreMeta(node_id=node_id, norm_score=score)]))


def test_with_client_status_records_the_change():
    alloc = _alloc("n1", 0.5)
    marked = with_client_status(alloc, "unknown", 5 * SECOND)
    assert marked.client_status == "unknown"
    assert [(s.field, s.value, s.time) for s in marked.alloc_states] == [
        ("ClientStatus", "unknown", "1970-01-01T00:00:05Z")]


# --- the server side: heartbeat invalidation ----------------------------------------------


@pytest.fixture
async def server():
    from yurt.server import FakeClock, Server, ServerConfig

    srv = Server(ServerConfig(num_schedulers=0, min_heartbeat_ttl=1.0, heartbeat_grace=1.0), clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


async def test_missed_heartbeat_disconnects_then_downs_the_node(server):
    from yurt.server.endpoints import register_node
    from yurt.state.commands import JobRegister, PlanApply
    from yurt.testing.mock import mock_alloc

    plain, guarded = mock_node(status="ready"), mock_node(status="ready")
    for node in (plain, guarded):
        register_node(server, node)
    job = disconnect_job()
    server.state.apply(JobRegister(job=job, eval=None, submit_time=server.now_ns()))
    alloc = mock_alloc(job, guarded)
    server.state.apply(PlanApply(eval_id="e", job=job, node_allocation={guarded.id: [alloc]},
                                 updated_at=server.now_ns()))
    server.clock.advance(5)  # past TTL (<= 2s) + grace (1s)
    server.run_timers()
    snap = server.state.snapshot()
    assert snap.node_by_id(plain.id).status == "down"
    assert snap.node_by_id(guarded.id).status == "disconnected"
    assert any(e.triggered_by == "node-update" and e.job_id == job.id for e in snap.evals(None))
    server.clock.advance(LOST_AFTER / SECOND - 1)
    server.run_timers()
    assert server.state.snapshot().node_by_id(guarded.id).status == "disconnected"
    server.clock.advance(2)
    server.run_timers()
    assert server.state.snapshot().node_by_id(guarded.id).status == "down"


# --- the client side: stop_on_client_after -------------------------------------------------


class _Runner:
    def __init__(self, alloc):
        self.alloc, self.terminal, self._stopping, self.stops = alloc, False, False, 0

    async def stop(self):
        self.stops += 1


class _Agent:
    def __init__(self, runners):
        self.alloc_runners = {r.alloc.id: r for r in runners}
        self.spawned = []

    def _spawn(self, coro):
        self.spawned.append(coro)
        coro.close()


def test_client_stops_allocs_after_stop_on_client_after_without_server_contact():
    from yurt.client.disconnect import note_server_contact, stop_after_lost_contact
    from yurt.testing.mock import mock_alloc

    guarded = mock_alloc(disconnect_job(stop_on_client_after=30 * SECOND))
    legacy_job = small_job(1)
    legacy_job = evolve(legacy_job, task_groups=[evolve(legacy_job.task_groups[0],
                                                        stop_after_client_disconnect=90 * SECOND)])
    legacy, plain = mock_alloc(legacy_job), mock_alloc(small_job(1))
    agent = _Agent([_Runner(guarded), _Runner(legacy), _Runner(plain)])
    assert stop_after_lost_contact(agent) == []  # never in contact yet: nothing to judge
    note_server_contact(agent)
    start = agent._last_server_contact
    assert stop_after_lost_contact(agent, now=start + 29) == []
    assert stop_after_lost_contact(agent, now=start + 31) == [guarded.id]
    assert stop_after_lost_contact(agent, now=start + 32) == []  # already stopping
    assert stop_after_lost_contact(agent, now=start + 91) == [legacy.id]
    assert len(agent.spawned) == 2


async def test_missed_heartbeat_records_a_node_event(server):
    from yurt.server.endpoints import register_node
    from yurt.server.heartbeat import node_missed_heartbeat

    node = mock_node(status="ready")
    register_node(server, node)
    assert node_missed_heartbeat(server, node.id) == "down"
    stored = server.state.snapshot().node_by_id(node.id)
    assert stored.status == "down" and stored.events[-1].message == "Node heartbeat missed"
    assert node_missed_heartbeat(server, node.id) is None
