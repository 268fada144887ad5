"""`spread` blocks: prefer nodes whose attribute value is under its desired share.

With targets, a value's desired count is percent x group count (`*` takes the
remainder) and the boost is ((desired - used) / desired) x weight / total weight;
a node without the attribute or with an untargeted value gets -1. Without targets,
the "even spread" boost compares the value's count with the least and most used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yurt.structs import Job, Node, Spread, TaskGroup

from .constraints import resolve_target

IMPLICIT_TARGET = "*"


@dataclass
class _SpreadState:
    attribute: str
    weight: int
    desired: dict[str, float]
    used: dict[str, int] = field(default_factory=dict)


def _target(attribute: str) -> str:
    return attribute if attribute.startswith("${") else "${" + attribute + "}"


class SpreadScorer:
    """Spread scoring for one task group; `count(node, +1/-1)` keeps usage current."""

    def __init__(self, job: Job, tg: TaskGroup) -> None:
        spreads: list[Spread] = list(tg.spreads or ()) + list(job.spreads or ())
        self.states = [self._state(s, tg.count) for s in spreads]
        self.total_weight = sum(s.weight for s in spreads) or 1
        self.lowest_boost = -1.0
        # node id -> its attribute values (nodes do not change during one evaluation), and
        # the even-spread boost per (spread, value), valid until the next `count`
        self._values: dict[str, tuple] = {}
        self._even: dict[tuple[int, str], float] = {}
        self.version = 0  # bumped by every `count`: scores computed before are stale

    def node_values(self, node: Node) -> tuple:
        values = self._values.get(node.id)
        if values is None:
            values = []
            for st in self.states:
                value, found = resolve_target(st.attribute, node)
                values.append(value if found else None)
            values = self._values[node.id] = tuple(values)
        return values

    @staticmethod
    def _state(spread: Spread, count: int) -> _SpreadState:
        desired: dict[str, float] = {}
        for t in spread.spread_target or ():
            desired[t.value] = t.percent / 100.0 * count
        total = sum(desired.values())
        if 0 < total < count:
            desired[IMPLICIT_TARGET] = count - total
        return _SpreadState(_target(spread.attribute), spread.weight, desired)

    def count(self, node: Node, sign: int = 1) -> None:
        for st, value in zip(self.states, self.node_values(node)):
            if value is not None:
                st.used[value] = st.used.get(value, 0) + sign
        self._even.clear()
        self.version += 1

    def score(self, node: Node) -> float:
        return self.score_values(self.node_values(node))

    def score_values(self, values: tuple) -> float:
        """The boost of a node whose attribute values (see `node_values`) are `values`."""
        total = 0.0
        for i, (st, value) in enumerate(zip(self.states, values)):
            if value is None:
                total -= 1.0
                continue
            if not st.desired:
                boost = self._even.get((i, value))
                if boost is None:
                    boost = self._even[(i, value)] = _even_boost(st.used, value)
                total += boost
                continue
            desired = st.desired.get(value, st.desired.get(IMPLICIT_TARGET))
            if desired is None:
                total -= 1.0
                continue
            if desired == 0:
                total += self.lowest_boost
                continue
            boost = (desired - (st.used.get(value, 0) + 1)) / desired * (st.weight / self.total_weight)
            total += boost
            self.lowest_boost = min(self.lowest_boost, boost)
        return total


def _even_boost(used: dict[str, int], value: str) -> float:
    live = {k: v for k, v in used.items() if v > 0}
    if not live:
        return 0.0
    current = live.get(value, 0)
    lo, hi = min(live.values()), max(live.values())
    if current != lo:
        return (lo - current) / lo if lo else -1.0
    if lo == hi:
        return -1.0
    return (hi - lo) / lo
