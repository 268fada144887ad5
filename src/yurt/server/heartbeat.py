"""Heartbeat timers: a node that does not heartbeat within its TTL (plus grace) is down.

Nomad's rule: TTL = max(min_heartbeat_ttl, nodes / max_heartbeats_per_second), plus a
random stagger of up to TTL; the client is told the TTL, the server waits TTL + grace.
Pure bookkeeping over an injectable clock; the server's loop calls `expired()`.
"""

import heapq
import random

from .clock import Clock


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
