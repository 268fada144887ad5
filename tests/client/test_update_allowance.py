"""Urgent alloc updates (a client status change): a few batches go at once, then one per
gap, so a node whose allocs change all the time still coalesces them."""

from yurt.client.agent import FlushAllowance


def test_a_burst_goes_at_once_then_one_batch_per_gap():
    allowance = FlushAllowance(gap=0.02, burst=3)
    now = 100.0
    for _ in range(3):
        assert allowance.due(now) == now
        allowance.take(now)
    assert abs(allowance.due(now) - (now + 0.02)) < 1e-9  # the bucket is empty: wait for a token
    allowance.take(now + 0.02)
    assert abs(allowance.due(now + 0.03) - (now + 0.04)) < 1e-9  # half a token refilled after 10 ms


def test_the_allowance_refills_to_the_burst_and_no_further():
    allowance = FlushAllowance(gap=0.02, burst=2)
    allowance.take(0.0)
    allowance.take(0.0)
    assert allowance.due(0.0) > 0.0
    later = 60.0  # a quiet minute refills two tokens, not 3,000
    allowance.take(later)
    allowance.take(later)
    assert allowance.due(later) > later


def test_a_rate_of_one_batch_per_gap_over_time():
    allowance = FlushAllowance(gap=0.02, burst=3)
    now, sent = 0.0, 0
    while now < 1.0:  # always urgent: send as soon as allowed
        now = allowance.due(now)
        allowance.take(now)
        sent += 1
    assert 50 <= sent <= 3 + 50 + 1  # the burst, then 1 / gap per second (the last one sent at 1.0 s)


def test_no_interval_holds_nothing_back():
    allowance = FlushAllowance(gap=0.0, burst=1)
    for _ in range(5):
        allowance.take(1.0)
        assert allowance.due(1.0) == 1.0
