"""Heartbeat timers: a node that does not heartbeat within its TTL (plus grace) is down.

Nomad's rule: TTL = max(min_heartbeat_ttl, nodes / max_heartbeats_per_second), plus a
random stagger of up to TTL; the client is told the TTL, the server waits TTL + grace.
Pure bookkeeping over an injectable clock; the server's loop calls `expired()`.
"""

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

    def ttl(self) -> float:
        """A fresh TTL for one node, scaled by how many nodes are tracked."""
        base = max(self.min_ttl, len(self._deadlines) / self.max_per_second)
        return base + self._rng.random() * base

    def reset(self, node_id: str, ttl: float | None = None) -> float:
        """The node heartbeated: its deadline moves to now + TTL + grace. Returns the TTL."""
        if ttl is None:
            ttl = self.ttl()
        self._deadlines[node_id] = self.clock.now() + ttl + self.grace
        return ttl

    def remove(self, node_id: str) -> None:
        self._deadlines.pop(node_id, None)

    def clear(self) -> None:
        self._deadlines.clear()

    def expired(self) -> list[str]:
        """Nodes past their deadline; they stop being tracked."""
        now = self.clock.now()
        gone = [node_id for node_id, deadline in self._deadlines.items() if deadline <= now]
        for node_id in gone:
            del self._deadlines[node_id]
        return gone

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def tracking(self, node_id: str) -> bool:
        return node_id in self._deadlines

    def __len__(self) -> int:
        return len(self._deadlines)
