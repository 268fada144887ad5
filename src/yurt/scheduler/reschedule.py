"""Reschedule policy arithmetic: may a failed alloc be replaced, and when."""

from __future__ import annotations

from yurt.structs import SECOND, Allocation, ReschedulePolicy
from yurt.structs.alloc import RescheduleEvent, RescheduleTracker

RESCHEDULE_WINDOW = 1 * SECOND  # reschedule now if the time is this close
BATCH_WINDOW = 5 * SECOND  # follow-up evals batch failures this close together
MAX_PAST_EVENTS = 5


def _events(alloc: Allocation) -> list[RescheduleEvent]:
    return list(alloc.reschedule_tracker.events or ()) if alloc.reschedule_tracker else []


def next_delay(alloc: Allocation, policy: ReschedulePolicy) -> int:
    """Nomad's `NextDelay`: constant, exponential or fibonacci, capped by max_delay."""
    delay = policy.delay
    events = _events(alloc)
    if not events:
        return delay
    if policy.delay_function == "exponential":
        delay = events[-1].delay * 2
    elif policy.delay_function == "fibonacci":
        if len(events) >= 2:
            n1, n2 = events[-1].delay, events[-2].delay
            delay = n1 if (n2 == policy.max_delay and n1 == policy.delay) else n1 + n2
    else:
        return delay
    if policy.max_delay > 0 and delay > policy.max_delay:
        delay = policy.max_delay
        if fail_time(alloc) - events[-1].reschedule_time > delay:
            delay = policy.delay
    return delay


def fail_time(alloc: Allocation) -> int:
    return alloc.modify_time or alloc.create_time


def reschedule_eligible(alloc: Allocation, policy: ReschedulePolicy | None, at: int) -> bool:
    """Attempts left under the policy at time `at` (unlimited, or attempts in the interval)."""
    if policy is None:
        return False
    if policy.unlimited:
        return True
    if policy.attempts <= 0:
        return False
    window_start = at - policy.interval
    attempted = sum(1 for e in _events(alloc) if e.reschedule_time > window_start)
    return attempted < policy.attempts


def next_reschedule_time(alloc: Allocation, policy: ReschedulePolicy | None) -> tuple[bool, int]:
    """(eligible, the time the replacement may be placed)."""
    failed_at = fail_time(alloc)
    if not reschedule_eligible(alloc, policy, failed_at):
        return False, 0
    assert policy is not None
    return True, failed_at + next_delay(alloc, policy)


def new_tracker(prev: Allocation, policy: ReschedulePolicy | None, now: int) -> RescheduleTracker:
    """The tracker of a replacement: recent history of `prev` plus this reschedule."""
    events = _events(prev)
    if policy is not None and not policy.unlimited and policy.interval > 0:
        events = [e for e in events if e.reschedule_time > now - policy.interval]
    else:
        events = events[-(MAX_PAST_EVENTS - 1):] if MAX_PAST_EVENTS > 1 else []
    delay = next_delay(prev, policy) if policy is not None else 0
    events.append(RescheduleEvent(reschedule_time=now, prev_alloc_id=prev.id, prev_node_id=prev.node_id, delay=delay))
    return RescheduleTracker(events=events)


def penalty_nodes(prev: Allocation) -> set[str]:
    """Nodes a replacement should avoid: where this alloc and its predecessors failed."""
    nodes = {prev.node_id}
    nodes.update(e.prev_node_id for e in _events(prev))
    return nodes
