"""Blocked evals (one per job, unblock, missed-wakeup guard) and heartbeat timers."""

import random

from yurt.server.blocked import BlockedEvals
from yurt.server.clock import FakeClock
from yurt.server.heartbeat import HeartbeatTimers
from yurt.structs import Evaluation


def blocked_eval(eval_id, job="web", index=1, snapshot_index=0):
    return Evaluation(id=eval_id, job_id=job, status="blocked", create_index=index,
                      snapshot_index=snapshot_index)


def test_one_blocked_eval_per_job_newer_replaces_older():
    blocked = BlockedEvals()
    blocked.set_enabled(True)
    assert not blocked.block(blocked_eval("b1", index=5)).duplicates
    result = blocked.block(blocked_eval("b2", index=9))
    assert [e.id for e in result.duplicates] == ["b1"]
    result = blocked.block(blocked_eval("b0", index=2))
    assert [e.id for e in result.duplicates] == ["b0"]
    assert len(blocked) == 1
    assert [e.id for e in blocked.unblock(20)] == ["b2"]
    assert len(blocked) == 0


def test_eval_blocked_on_old_snapshot_is_released_at_once():
    blocked = BlockedEvals()
    blocked.set_enabled(True)
    blocked.unblock(50)
    result = blocked.block(blocked_eval("b1", snapshot_index=40))
    assert [e.id for e in result.unblock_now] == ["b1"]
    assert len(blocked) == 0
    result = blocked.block(blocked_eval("b2", snapshot_index=60))
    assert not result.unblock_now and len(blocked) == 1


def test_disabled_blocked_evals_track_nothing():
    blocked = BlockedEvals()
    blocked.block(blocked_eval("b1"))
    assert len(blocked) == 0


def test_heartbeat_expires_after_ttl_plus_grace():
    clock = FakeClock()
    timers = HeartbeatTimers(clock, min_ttl=10, max_per_second=50, grace=5, rng=random.Random(1))
    ttl = timers.reset("n1")
    assert 10 <= ttl < 20
    clock.advance(ttl + 4.9)
    assert timers.expired() == []
    clock.advance(0.2)
    assert timers.expired() == ["n1"]
    assert timers.expired() == []
    assert not timers.tracking("n1")


def test_heartbeat_reset_extends_deadline():
    clock = FakeClock()
    timers = HeartbeatTimers(clock, min_ttl=10, grace=0, rng=random.Random(2))
    timers.reset("n1", ttl=10)
    clock.advance(8)
    timers.reset("n1", ttl=10)
    clock.advance(8)
    assert timers.expired() == []
    clock.advance(3)
    assert timers.expired() == ["n1"]


def test_heartbeat_ttl_scales_with_node_count():
    clock = FakeClock()
    timers = HeartbeatTimers(clock, min_ttl=1, max_per_second=10, grace=0, rng=random.Random(3))
    for i in range(100):
        timers.reset(f"n{i}")
    assert timers.ttl() >= 10  # 100 nodes / 10 per second


def test_server_config_takes_nanosecond_durations_from_agent_files():
    from yurt.server import ServerConfig

    cfg = ServerConfig(heartbeat_grace=30_000_000_000, min_heartbeat_ttl=5.0).normalize()
    assert cfg.heartbeat_grace == 30.0 and cfg.min_heartbeat_ttl == 5.0
