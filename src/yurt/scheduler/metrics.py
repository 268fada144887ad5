"""AllocMetric bookkeeping for one placement, and the failure sentence a person reads.

Nomad's counters are kept as they are (`ConstraintFiltered` keyed by the constraint
text, `DimensionExhausted` by dimension); `FailureReasons` adds one sentence such as
"5 nodes evaluated: 2 filtered by constraint `${attr.kernel.name} = windows`,
1 not in datacenter dc2, 2 exhausted memory (needs 2048 MB, most free is 1024 MB)".
"""

from __future__ import annotations

from operator import itemgetter

from yurt.structs import AllocMetric, NodeScoreMeta

from .feasible import CandidateNodes

_UNITS = {"cpu": "MHz", "memory": "MB", "disk": "MB", "cores": "cores"}
TOP_SCORES = 5


class PlacementMetrics:
    """Counters for one Select; turned into an AllocMetric at the end."""

    __slots__ = (
        "evaluated", "filtered", "exhausted", "constraint_filtered", "class_filtered",
        "dimension_exhausted", "class_exhausted", "phrases", "most_free", "needs", "scored", "top",
    )

    def __init__(self) -> None:
        self.evaluated = 0
        self.filtered = 0
        self.exhausted = 0
        # the counters are made on first use: most placements filter and exhaust nothing
        self.constraint_filtered: dict[str, int] | None = None
        self.class_filtered: dict[str, int] | None = None
        self.dimension_exhausted: dict[str, int] | None = None
        self.class_exhausted: dict[str, int] | None = None
        self.phrases: dict[str, int] | None = None
        self.most_free: dict[str, int] | None = None
        self.needs: dict[str, int] | None = None
        # (final, node id, binpack, job-anti-affinity, node-reschedule-penalty, node-affinity, spread,
        #  preemption)
        self.scored: list[tuple] = []
        self.top: list[NodeScoreMeta] | None = None  # the score entries, when made by the walk (window.py)

    def filter(self, node_class: str, reason: str, phrase: str, n: int = 1) -> None:
        """`n` nodes filtered for `reason`."""
        self.filtered += n
        if self.constraint_filtered is None:
            self.constraint_filtered, self.class_filtered, self.phrases = {}, {}, {}
        self.constraint_filtered[reason] = self.constraint_filtered.get(reason, 0) + n
        if node_class:
            self.class_filtered[node_class] = self.class_filtered.get(node_class, 0) + n
        self.phrases[phrase] = self.phrases.get(phrase, 0) + n

    def exhaust(self, node_class: str, dimension: str, free: int | None = None, need: int | None = None,
                n: int = 1) -> None:
        """`n` nodes exhausted in `dimension` (each with `free` left)."""
        self.exhausted += n
        if self.dimension_exhausted is None:
            self.dimension_exhausted, self.class_exhausted, self.needs, self.most_free = {}, {}, {}, {}
        self.dimension_exhausted[dimension] = self.dimension_exhausted.get(dimension, 0) + n
        if node_class:
            self.class_exhausted[node_class] = self.class_exhausted.get(node_class, 0) + n
        if free is not None and need is not None:
            self.needs[dimension] = need
            self.most_free[dimension] = max(self.most_free.get(dimension, free), free)

    def to_alloc_metric(self, candidates: CandidateNodes, failed: bool,
                        metas: dict[tuple, NodeScoreMeta] | None = None) -> AllocMetric:
        """`metas`: a cache of score entries kept by the caller for one evaluation; a node
        that scores the same for several placements then shares one (read-only) entry."""
        scored = self.scored
        if self.top is not None and not scored:
            top = self.top
        else:
            if len(scored) > 1:  # as heapq.nlargest(TOP_SCORES, ...): ties keep their order
                scored = sorted(scored, key=_FIRST, reverse=True)[:TOP_SCORES]
            if metas is None:
                top = [score_meta(s) for s in scored]
            else:
                top = []
                for s in scored:
                    meta = metas.get(s)
                    if meta is None:
                        meta = metas[s] = score_meta(s, metas)
                    top.append(meta)
        return AllocMetric(
            nodes_evaluated=self.evaluated,
            nodes_filtered=self.filtered,
            nodes_in_pool=candidates.in_pool,
            nodes_available=candidates.by_datacenter,  # shared, read-only
            class_filtered=self.class_filtered or None,
            constraint_filtered=self.constraint_filtered or None,
            nodes_exhausted=self.exhausted,
            class_exhausted=self.class_exhausted or None,
            dimension_exhausted=self.dimension_exhausted or None,
            scores=None,
            score_meta_data=top or None,
            failure_reasons=[failure_sentence(self, candidates)] if failed else None,
        )


_FIRST = itemgetter(0)


def score_meta(scored: tuple, shared: dict | None = None) -> NodeScoreMeta:
    """The entry of one scored node. `shared`: a cache in which equal score maps are kept
    once (keyed by the parts; read-only once made)."""
    final, node_id, binpack, anti, penalty, affinity, spread, preemption, *rest = scored
    if shared is not None:
        parts = ("scores", *scored[2:])
        scores = shared.get(parts)
        if scores is not None:
            return NodeScoreMeta(node_id=node_id, scores=scores, norm_score=final)
    scores = {"binpack": binpack}  # the others only when they count
    if anti:
        scores["job-anti-affinity"] = anti
    if penalty:
        scores["node-reschedule-penalty"] = penalty
    if affinity:
        scores["node-affinity"] = affinity
    if spread:
        scores["allocation-spread"] = spread
    if preemption:
        scores["preemption"] = preemption
    if rest and rest[0]:
        scores["devices"] = rest[0]
    if shared is not None:
        shared[parts] = scores
    return NodeScoreMeta(node_id=node_id, scores=scores, norm_score=final)


def _exhausted_phrase(m: PlacementMetrics, dimension: str, count: int) -> str:
    unit = _UNITS.get(dimension)
    needs = m.needs or {}
    if unit and dimension in needs:
        return (
            f"{count} exhausted {dimension} (needs {m.needs[dimension]} {unit}, "
            f"most free is {max(m.most_free[dimension], 0)} {unit})"
        )
    if dimension in needs:  # devices: "nvidia/gpu" needs 2, most free is 1
        return f"{count} exhausted {dimension} (needs {m.needs[dimension]}, most free is {m.most_free[dimension]})"
    return f"{count} exhausted {dimension}"


def _datacenters_phrase(count: int, dcs: list[str]) -> str:
    label = "datacenter" if len(dcs) == 1 else "datacenters"
    return f"{count} not in {label} {' '.join(dcs)}"


def failure_sentence(m: PlacementMetrics, c: CandidateNodes) -> str:
    parts: list[str] = []
    skipped = c.total - len(c.nodes)
    for count, text in (
        (c.not_ready, "not ready"),
        (c.ineligible, "ineligible"),
        (c.draining, "draining"),
        (c.wrong_pool, f"not in node pool {c.pool}"),
    ):
        if count:
            parts.append(f"{count} {text}")
    if c.wrong_datacenter:
        parts.append(_datacenters_phrase(c.wrong_datacenter, c.datacenters))
    parts.extend(f"{count} {phrase}" for phrase, count in (m.phrases or {}).items())
    for dimension, count in (m.dimension_exhausted or {}).items():
        parts.append(_exhausted_phrase(m, dimension, count))
    total = skipped + m.evaluated
    if total == 0:
        return "no nodes were eligible for evaluation: no nodes are registered"
    noun = "node" if total == 1 else "nodes"
    return f"{total} {noun} evaluated: " + ", ".join(parts) if parts else f"{total} {noun} evaluated"
