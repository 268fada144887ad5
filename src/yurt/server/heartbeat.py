"""Heartbeat timers: a node that does not heartbeat within its TTL (plus grace) is down.

Nomad's rule: TTL = max(min_heartbeat_ttl, nodes / max_heartbeats_per_second), plus a
random stagger of up to TTL; the client is told the TTL, the server waits TTL + grace.
Pure bookkeeping over an injectable clock; the server's loop calls `expired()`.
"""

import heapq
import random

from .clock import Clock

HEARTBEAT_MISSED = "Node heartbeat missed"


class HeartbeatTimers:
    def __init__(
        self,
        clock: Clock,
        min_ttl: float = 10.0,
        max_per_second: float = 50.0,
        grace: float = 10.0,
        rng: random.Random | None = None,
    ):
        self.clock = clock
        self.min_ttl = min_ttl
        self.max_per_second = max_per_second
        self.grace = grace
        self._rng = rng or random.Random()
        self._deadlines: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (deadline, node); stale entries skipped

    def ttl(self) -> float:
        """A fresh TTL for one node, scaled by how many nodes are tracked."""
        base = max(self.min_ttl, len(self._deadlines) / self.max_per_second)
        return base + self._rng.random() * base

    def reset(self, node_id: str, ttl: float | None = None) -> float:
        """The node heartbeated: its deadline moves to now + TTL + grace. Returns the TTL."""
        if ttl is None:
            ttl = self.ttl()
        deadline = self.clock.now() + ttl + self.grace
        self._deadlines[node_id] = deadline
        heapq.heappush(self._heap, (deadline, node_id))
        if len(self._heap) > 2 * len(self._deadlines) + 64:
            self._heap = [(d, n) for n, d in self._deadlines.items()]
            heapq.heapify(self._heap)
        return ttl

    def remove(self, node_id: str) -> None:
        self._deadlines.pop(node_id, None)

    def clear(self) -> None:
        self._deadlines.clear()
        self._heap.clear()

    def expired(self) -> list[str]:
        """Nodes past their deadline; they stop being tracked. Cheap when none are."""
        now = self.clock.now()
        gone = []
        while self._heap and self._heap[0][0] <= now:
            deadline, node_id = heapq.heappop(self._heap)
            if self._deadlines.get(node_id) == deadline:
                del self._deadlines[node_id]
                gone.append(node_id)
        return gone

    def next_deadline(self) -> float | None:
        while self._heap and self._deadlines.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def tracking(self, node_id: str) -> bool:
        return node_id in self._deadlines

    def __len__(self) -> int:
        return len(self._deadlines)


def disconnect_window(snapshot, node_id: str) -> int:
    """The longest `disconnect.lost_after` (ns) among the node's live allocs; 0 when none
    of them may outlive a lost heartbeat (the node then goes down at once)."""
    from yurt.scheduler.disconnect import disconnect_policy

    longest = 0
    for alloc in snapshot.allocs_by_node(node_id):
        job = alloc.job or snapshot.job_by_id(alloc.namespace, alloc.job_id)
        if alloc.terminal or job is None:
            continue
        policy = disconnect_policy(job.lookup_task_group(alloc.task_group))
        if policy is not None:
            longest = max(longest, policy.lost_after)
    return longest


def node_missed_heartbeat(server, node_id: str) -> str | None:
    """Nomad's heartbeat invalidation: a ready node whose allocs allow it goes
    `disconnected` (its timer re-armed for the longest `lost_after`); otherwise, or when a
    disconnected node stays silent that long, it goes `down`. Returns the new status."""
    from yurt.state.commands import NodeUpdateStatus
    from yurt.structs import NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN, NodeEvent
    from yurt.structs.timefmt import format_rfc3339_ns

    from .endpoints.nodes import node_update_evals

    snapshot = server.state.snapshot()
    node = snapshot.node_by_id(node_id)
    if node is None or node.status == NODE_STATUS_DOWN:
        return None
    window = disconnect_window(snapshot, node_id) if node.status != NODE_STATUS_DISCONNECTED else 0
    status = NODE_STATUS_DISCONNECTED if window else NODE_STATUS_DOWN
    now = server.now_ns()
    event = NodeEvent(message=HEARTBEAT_MISSED, subsystem="Cluster", timestamp=format_rfc3339_ns(now))
    server.state.apply(NodeUpdateStatus(node_id=node_id, status=status, updated_at=now, event=event,
                                        evals=node_update_evals(snapshot, node_id, now)))
    if window:
        server.heartbeats.reset(node_id, ttl=max(window / 1e9 - server.heartbeats.grace, 0.0))
    return status
