"""Eval broker: ordering, one eval per job in flight, ack/nack, delivery limit, delays."""

import pytest

from yurt.server.broker import BrokerError, EvalBroker
from yurt.server.clock import NS_PER_SECOND, FakeClock
from yurt.structs import Evaluation


def make_eval(eval_id, job="job", priority=50, index=1, typ="service", **kw):
    return Evaluation(id=eval_id, job_id=job, priority=priority, create_index=index,
                      modify_index=index, type=typ, **kw)


def new_broker(**kw):
    clock = FakeClock()
    broker = EvalBroker(clock=clock, **kw)
    broker.set_enabled(True)
    return broker, clock


def test_priority_then_create_index():
    broker, _ = new_broker()
    broker.enqueue(make_eval("low", job="a", priority=20, index=1))
    broker.enqueue(make_eval("high-new", job="b", priority=80, index=5))
    broker.enqueue(make_eval("high-old", job="c", priority=80, index=3))
    order = [broker.try_dequeue(["service"])[0].id for _ in range(3)]
    assert order == ["high-old", "high-new", "low"]
    assert broker.try_dequeue(["service"]) is None


def test_only_requested_scheduler_types():
    broker, _ = new_broker()
    broker.enqueue(make_eval("b1", job="x", typ="batch"))
    assert broker.try_dequeue(["service"]) is None
    assert broker.try_dequeue(["service", "batch"])[0].id == "b1"


def test_one_eval_per_job_in_flight_newest_pending_wins():
    broker, _ = new_broker(cancel_hold=0)
    broker.enqueue(make_eval("e1", index=1))
    broker.enqueue(make_eval("e2", index=2))
    broker.enqueue(make_eval("e3", index=3))
    ev, token = broker.try_dequeue(["service"])
    assert ev.id == "e1"
    assert broker.try_dequeue(["service"]) is None
    assert broker.stats().total_pending == 2
    broker.ack("e1", token)
    ev, token = broker.try_dequeue(["service"])
    assert ev.id == "e3"
    assert [e.id for e in broker.take_cancelable()] == ["e2"]
    broker.ack("e3", token)
    assert broker.stats().total_unacked == 0


def test_ack_with_wrong_token_fails():
    broker, _ = new_broker()
    broker.enqueue(make_eval("e1"))
    broker.try_dequeue(["service"])
    with pytest.raises(BrokerError):
        broker.ack("e1", "not-the-token")


def test_nack_redelivers_after_delay():
    broker, clock = new_broker(initial_nack_delay=1.0, subsequent_nack_delay=20.0)
    broker.enqueue(make_eval("e1"))
    _, token = broker.try_dequeue(["service"])
    broker.nack("e1", token)
    assert broker.try_dequeue(["service"]) is None
    clock.advance(1.0)
    broker.tick()
    ev, token = broker.try_dequeue(["service"])
    assert ev.id == "e1"
    broker.nack("e1", token)
    clock.advance(10.0)
    broker.tick()
    assert broker.try_dequeue(["service"]) is None
    clock.advance(10.0)
    broker.tick()
    assert broker.try_dequeue(["service"])[0].id == "e1"


def test_delivery_limit_moves_eval_to_failed_and_frees_job():
    broker, clock = new_broker(delivery_limit=2, initial_nack_delay=0, subsequent_nack_delay=0)
    broker.enqueue(make_eval("e1", index=1))
    broker.enqueue(make_eval("e2", index=2))
    for _ in range(2):
        broker.tick()
        ev, token = broker.try_dequeue(["service"])
        assert ev.id == "e1"
        broker.nack("e1", token)
    assert [e.id for e in broker.take_failed()] == ["e1"]
    assert broker.try_dequeue(["service"])[0].id == "e2"


def test_nack_timeout_redelivers():
    broker, clock = new_broker(nack_timeout=5.0, initial_nack_delay=0)
    broker.enqueue(make_eval("e1"))
    broker.try_dequeue(["service"])
    clock.advance(4.0)
    broker.tick()
    assert broker.stats().total_unacked == 1
    clock.advance(1.5)
    broker.tick()
    assert broker.try_dequeue(["service"])[0].id == "e1"


def test_wait_until_holds_eval():
    broker, clock = new_broker()
    at = int((clock.now() + 30) * NS_PER_SECOND)
    broker.enqueue(make_eval("later", wait_until=at))
    broker.tick()
    assert broker.try_dequeue(["service"]) is None
    clock.advance(30)
    broker.tick()
    assert broker.try_dequeue(["service"])[0].id == "later"


def test_disabled_broker_ignores_and_duplicate_ids_ignored():
    broker = EvalBroker(clock=FakeClock())
    broker.enqueue(make_eval("e1"))
    assert broker.try_dequeue(["service"]) is None
    broker.set_enabled(True)
    broker.enqueue(make_eval("e1"))
    broker.enqueue(make_eval("e1"))
    assert broker.stats().total_ready == 1


async def test_dequeue_waits_for_enqueue():
    import asyncio
    broker, _ = new_broker()
    task = asyncio.create_task(broker.dequeue(["service"], timeout=5))
    await asyncio.sleep(0.01)
    broker.enqueue(make_eval("e1"))
    ev, _ = await task
    assert ev.id == "e1"
    assert await broker.dequeue(["service"], timeout=0.01) is None


def _superseded(broker):
    """e1 in flight, then acked: e3 (the newest) runs next, e2 is superseded."""
    for i in (1, 2, 3):
        broker.enqueue(make_eval(f"e{i}", index=i))
    ev, token = broker.try_dequeue(["service"])
    broker.ack(ev.id, token)
    return broker.try_dequeue(["service"])


def test_superseded_evals_wait_for_an_idle_broker():
    broker, clock = new_broker(cancel_quiet=0.5, cancel_hold=5.0)
    ev, token = _superseded(broker)
    assert broker.take_cancelable() == []  # e3 in flight
    clock.advance(1.0)
    assert broker.take_cancelable() == []
    broker.ack(ev.id, token)
    clock.advance(0.4)
    assert broker.take_cancelable() == []  # idle, but not for long
    clock.advance(0.1)
    assert [e.id for e in broker.take_cancelable()] == ["e2"]
    assert broker.take_cancelable() == []


def test_a_busy_broker_holds_superseded_evals_at_most_cancel_hold():
    broker, clock = new_broker(cancel_quiet=0.5, cancel_hold=5.0)
    _superseded(broker)
    broker.enqueue(make_eval("other", job="other", index=4))  # always something ready
    clock.advance(4.9)
    assert broker.take_cancelable() == []
    clock.advance(0.1)
    assert [e.id for e in broker.take_cancelable()] == ["e2"]
