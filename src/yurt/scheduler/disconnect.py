"""Disconnected clients (the group `disconnect` block): pure rules for the reconciler.

While a node is `disconnected`, allocs of groups with `disconnect.lost_after` (or the
deprecated `max_client_disconnect`) become `unknown` instead of `lost`; a replacement
is placed only when `replace` (default true). The server records the change in
`AllocStates`; after `lost_after` the unknown alloc is lost. When the client comes back
and reports the alloc again, the reconciler keeps one of the original and its
replacement per `reconcile` and stops the other; the kept original is only updated
(its tasks are not restarted).
"""

from __future__ import annotations

from yurt.structs import SECOND, Allocation, Disconnect, TaskGroup, evolve
from yurt.structs.alloc import ALLOC_CLIENT_RUNNING, ALLOC_CLIENT_UNKNOWN, AllocState
from yurt.structs.timefmt import format_rfc3339_ns, parse_rfc3339_ns

CLIENT_STATUS_FIELD = "ClientStatus"
RECONCILE_BEST_SCORE = "best_score"
RECONCILE_KEEP_ORIGINAL = "keep_original"
RECONCILE_KEEP_REPLACEMENT = "keep_replacement"
RECONCILE_LONGEST_RUNNING = "longest_running"
ALLOC_RECONNECTED = "alloc not needed due to disconnected client reconnect"
ALLOC_UNKNOWN = "alloc is unknown since its node is disconnected"
MAX_ALLOC_STATES = 10
DEFAULT_KILL_TIMEOUT = 5 * SECOND


def disconnect_policy(tg: TaskGroup | None) -> Disconnect | None:
    """The group's disconnect rules, or None when its allocs are lost on disconnect.
    `max_client_disconnect` (deprecated) means lost_after with the defaults."""
    if tg is None:
        return None
    block = tg.disconnect
    if block is not None and block.lost_after > 0:
        return block
    if tg.max_client_disconnect:
        return Disconnect(lost_after=tg.max_client_disconnect, replace=True, reconcile=RECONCILE_BEST_SCORE)
    return None


def client_stop_delay(tg: TaskGroup) -> int:
    """How long (ns) a cut-off client keeps the group's allocs before stopping them
    (`disconnect.stop_on_client_after`, or the deprecated `stop_after_client_disconnect`); 0 = never."""
    block = tg.disconnect
    return (block.stop_on_client_after if block is not None else None) or tg.stop_after_client_disconnect or 0


def lost_replacement_time(tg: TaskGroup, lost_at: int) -> int:
    """When a lost alloc of a group with a client stop delay may be replaced: once its
    client has surely stopped it (Nomad's WaitClientStop: delay plus the longest kill timeout)."""
    kill = max([DEFAULT_KILL_TIMEOUT, *(t.kill_timeout for t in tg.tasks or ())])
    return lost_at + client_stop_delay(tg) + kill


def replaces(policy: Disconnect) -> bool:
    return policy.replace is not False


def _status_changes(alloc: Allocation) -> list[AllocState]:
    return [s for s in alloc.alloc_states or () if s.field == CLIENT_STATUS_FIELD]


def unknown_since(alloc: Allocation) -> int:
    """When the server marked the alloc unknown (0 if it is not)."""
    changes = _status_changes(alloc)
    if changes and changes[-1].value == ALLOC_CLIENT_UNKNOWN:
        return parse_rfc3339_ns(changes[-1].time)
    return 0


def needs_reconnect(alloc: Allocation) -> bool:
    """The client reported the alloc again after the server marked it unknown."""
    return alloc.client_status != ALLOC_CLIENT_UNKNOWN and unknown_since(alloc) > 0


def expired(alloc: Allocation, policy: Disconnect, now_ns: int) -> bool:
    since = unknown_since(alloc)
    return bool(since) and now_ns >= since + policy.lost_after


def with_client_status(alloc: Allocation, status: str, now_ns: int, description: str = "") -> Allocation:
    """The alloc with its client status set by the server and the change recorded."""
    states = [*(alloc.alloc_states or ()), AllocState(field=CLIENT_STATUS_FIELD, value=status,
                                                      time=format_rfc3339_ns(now_ns))]
    return evolve(alloc, client_status=status, client_description=description or alloc.client_description,
                  alloc_states=states[-MAX_ALLOC_STATES:])


def _score(alloc: Allocation) -> float:
    metrics = alloc.metrics
    entries = list(metrics.score_meta_data or ()) if metrics else []
    own = [m.norm_score for m in entries if m.node_id == alloc.node_id]
    return max(own or [m.norm_score for m in entries], default=0.0)


def _started(alloc: Allocation) -> int:
    """When the alloc's tasks last started (earliest main task start; 0 if unknown)."""
    times = []
    for state in (alloc.task_states or {}).values():
        starts = [e.time for e in state.events or () if e.type == "Started"]
        if starts:
            times.append(max(starts))
    return min(times) if times else 0


def pick_reconnected(original: Allocation, replacement: Allocation | None, policy: Disconnect) -> Allocation:
    """Which of the reconnected original and its live replacement to keep."""
    if replacement is None:
        return original
    if original.client_status != ALLOC_CLIENT_RUNNING and replacement.client_status == ALLOC_CLIENT_RUNNING:
        return replacement
    mode = policy.reconcile or RECONCILE_BEST_SCORE
    if mode == RECONCILE_KEEP_REPLACEMENT:
        return replacement
    if mode == RECONCILE_LONGEST_RUNNING:
        first, second = _started(original), _started(replacement)
        return replacement if second and (not first or second < first) else original
    if mode == RECONCILE_BEST_SCORE:
        return replacement if _score(replacement) > _score(original) else original
    return original
