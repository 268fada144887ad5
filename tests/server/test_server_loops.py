"""Server leader loops without workers: broker feeding from the state, failed and
superseded evals, blocked-eval duplicates, leadership toggling."""

import pytest

from yurt.server import FakeClock, Server, ServerConfig
from yurt.state.commands import EvalUpsert
from yurt.structs import Evaluation, generate_uuid


def pending_eval(job="web", status="pending", **kw):
    return Evaluation(id=generate_uuid(), job_id=job, type="service", status=status,
                      triggered_by="job-register", **kw)


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=0, eval_initial_nack_delay=0, eval_subsequent_nack_delay=0),
                 clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


async def test_upserted_pending_evals_reach_the_broker(server):
    ev = pending_eval()
    server.state.apply(EvalUpsert(evals=[ev]))
    got, token = server.broker.try_dequeue(["service"])
    assert got.id == ev.id and got.create_index > 0
    server.broker.ack(got.id, token)


async def test_delivery_limit_fails_eval_and_creates_follow_up(server):
    ev = pending_eval()
    server.state.apply(EvalUpsert(evals=[ev]))
    for _ in range(3):
        server.broker.tick()
        got, token = server.broker.try_dequeue(["service"])
        server.broker.nack(got.id, token)
    server.run_timers()
    snap = server.state.snapshot()
    failed = snap.eval_by_id(ev.id)
    assert failed.status == "failed" and failed.next_eval
    follow = snap.eval_by_id(failed.next_eval)
    assert follow.triggered_by == "failed-follow-up" and follow.status == "pending"
    assert follow.wait_until > server.now_ns()
    assert server.broker.try_dequeue(["service"]) is None  # held until wait_until
    server.clock.advance(61)
    server.broker.tick()
    assert server.broker.try_dequeue(["service"])[0].id == follow.id


async def test_superseded_pending_evals_are_canceled(server):
    evs = [pending_eval() for _ in range(3)]
    for ev in evs:
        server.state.apply(EvalUpsert(evals=[ev]))
    got, token = server.broker.try_dequeue(["service"])
    assert got.id == evs[0].id
    server.broker.ack(got.id, token)
    newest, token = server.broker.try_dequeue(["service"])
    assert newest.id == evs[2].id
    server.run_timers()  # the broker is busy (evs[2] in flight): the cancel waits
    assert server.state.snapshot().eval_by_id(evs[1].id).status == "pending"
    server.broker.ack(newest.id, token)
    server.clock.advance(server.broker.cancel_quiet)
    server.run_timers()
    assert server.state.snapshot().eval_by_id(evs[1].id).status == "canceled"


async def test_duplicate_blocked_evals_are_canceled(server):
    older, newer = pending_eval(status="blocked"), pending_eval(status="blocked")
    server.state.apply(EvalUpsert(evals=[older]))
    server.state.apply(EvalUpsert(evals=[newer]))
    server.run_timers()
    snap = server.state.snapshot()
    assert snap.eval_by_id(older.id).status == "canceled"
    assert snap.eval_by_id(newer.id).status == "blocked"
    assert server.blocked.has_job("default", "web")


async def test_revoke_and_reestablish_leadership_restores_evals(server):
    ev = pending_eval()
    server.state.apply(EvalUpsert(evals=[ev]))
    await server.revoke_leadership()
    assert not server.broker.enabled and server.broker.try_dequeue(["service"]) is None
    await server.establish_leadership()
    assert server.broker.try_dequeue(["service"])[0].id == ev.id


async def test_plan_from_a_worker_that_lost_its_eval_is_refused(server):
    from yurt.structs import Plan

    ev = pending_eval()
    server.state.apply(EvalUpsert(evals=[ev]))
    got, token = server.broker.try_dequeue(["service"])
    with pytest.raises(RuntimeError, match="no longer outstanding"):
        await server.applier.submit(Plan(eval_id=got.id, eval_token="stale-token"))
    result = await server.applier.submit(Plan(eval_id=got.id, eval_token=token))
    assert not result.rejected_nodes
