"""A faster walk of the candidate window that makes exactly the decisions of the
node-by-node walk in `select.NodeSelector`.

Most nodes look alike to one task group: same feasibility reason, same free and
total cpu / memory, same allocs of the group, same affinity score and spread values.
Every node gets an equivalence class id (a small int) for the group; a placement then
walks the window over class ids alone, scoring each class at most once (its score
changes only when the spread counts do), and replays the metrics per class. A node's
class is recomputed when the plan changes its usage (`UsageTracker.log`).

Used only when every per-node result is determined by the class: feasibility decided
by the node class (no escaped constraints, distinct_*, host volumes), no reserved
cores, no reschedule penalty, no preemption and no spread target of 0 %. A window
holding a node whose ports are so scarce that ranking it draws random ports falls back
to the node-by-node walk (the random draws must happen as they always did).
"""

from __future__ import annotations

import heapq
from collections import Counter
from itertools import compress
from operator import itemgetter, not_

from yurt.structs import NodeScoreMeta
from yurt.structs.resources import DIM_CPU, DIM_DISK, DIM_MEMORY

from .metrics import TOP_SCORES, score_meta
from .score import score_parts
from .usage import DIM_PORT_COLLISION
from .window_setup import _EXHAUSTED, _FILTERED, _SCORED, _SLOW, initial_classes

MAX_SKIP = 3
SKIP_SCORE_THRESHOLD = 0.0

BULK_LIMIT = 32  # smaller windows: the step-by-step walk is as quick
SHORT_TAIL = 32  # a window cut by up to this many nodes has its counts adjusted, not recounted
SMALL_WINDOW = 48  # windows up to this length sort all their scored nodes for the top scores

_FIRST = itemgetter(0)
_UNSCORED = float("inf")  # ClassWindow.neg of a class not scored this epoch (or not a scored kind)
FALLBACK = object()  # returned by `ClassWindow.select` when the node-by-node walk must run
_GAP = float("inf")  # `ClassWindow.pneg` of a filtered or exhausted node (this object: counted by identity)
_SKIPPED = float("nan")  # `ClassWindow.pneg` of a node whose score the walk would skip (found by identity)

# Kept across evaluations (W1's jobs are alike: the same classes score the same in each):
# score_parts(...) of a class without spread values, per (cpu, memory, count, algorithm) of
# the group, keyed by its signature; and score maps (metrics.score_meta's `shared`), keyed
# by the parts. Read-only once made; emptied when they grow past _CACHE_LIMIT entries.
_CLASS_SCORES: dict[tuple, dict[tuple, tuple]] = {}
_SCORE_MAPS: dict[tuple, dict] = {}
_MAP_OF: dict[tuple, dict] = {}  # score_parts(...) -> its score map
_CACHE_LIMIT = 50_000


def window_applies(placer) -> bool:
    spreads = placer.spreads
    if spreads is not None and any(0 in st.desired.values() or 0.0 in st.desired.values()
                                   for st in spreads.states):
        return False  # a 0 % target scores with the lowest boost seen so far: order-dependent
    # devices and host networks (devices.py, host_networks.py) are judged node by node
    return (placer.checker.class_only and not placer.cores and not getattr(placer, "device_asks", None)
            and not getattr(placer, "host_networks", None))


class ClassWindow:
    """Class ids of the selector's nodes for one task group, kept current with the plan."""

    def __init__(self, selector, placer) -> None:
        # the selector is not kept (it holds this window: no reference cycle, so an eval's
        # objects are freed when it ends rather than by the cyclic GC); `select` gets it
        self.filter_phrase = selector.filter_phrase
        self.placer = placer
        self.tracker = selector.tracker
        self.nodes = selector.nodes
        self.layout = selector.layout  # (permutation, nodetable.Columns) or None
        self._pos: dict[str, int] | None = None  # node id -> position, made when first needed
        self.bases: list | None = None  # with a layout: NodeBase per sorted index (nodetable.Columns)
        self._inverse: list[int] | None = None  # with a layout: sorted index -> position, made when first needed
        self.last: tuple[str, int] | None = None  # (node id, position) of the last choice
        self.ids: dict[tuple, int] = {}
        self.kind: list[int] = []
        self.info: list[tuple] = []  # per class: what its kind needs (see _signature)
        self.score: list[tuple | None] = []  # per class: score_parts(...) while valid
        self.neg: list[float] = []  # per class: minus its final score while valid this epoch, else _UNSCORED
        self.stamp: list[int] = []  # per class: the spread epoch its score was computed at
        self.epoch = 0
        self.spread_version = -1
        self.log_pos = len(self.tracker.log)
        self.metas: dict[int, object] = {}  # class * len(nodes) + node position -> NodeScoreMeta, this epoch
        if len(_SCORE_MAPS) > _CACHE_LIMIT:
            _SCORE_MAPS.clear()
        self.shared_scores = _SCORE_MAPS  # see metrics.score_meta
        self.class_scores: dict[int, dict] = {}  # class -> its score map, this epoch
        key = (placer.cpu, placer.mem, placer.count, placer.spread_algorithm)
        known = _CLASS_SCORES.get(key)
        if known is None or len(known) > _CACHE_LIMIT:
            if len(_CLASS_SCORES) > 64:
                _CLASS_SCORES.clear()
            known = _CLASS_SCORES[key] = {}
        self.known_scores = known  # signature -> score_parts(...), for classes without spread values
        self.cls = initial_classes(self)
        # per position: minus its class's score, or _GAP / _SKIPPED (see `next_plain`); kept
        # only for a group without spreads (scores then never change) and made on first use
        self.pneg: list[float] | None = None
        self.pmeta: list | None = None  # with `pneg`: per position, its score entry once made (see `next_plain`)
        self.gap_class = -1  # see `_class_neg`

    # --- classes -------------------------------------------------------------------------
    def _signature(self, node, base=None) -> tuple:
        """`base`: the node's NodeBase in the tracker's snapshot, when the caller has it."""
        placer = self.placer
        checker = placer.checker
        u, groups = self.tracker.peek(node, base)
        reason = checker.class_cache.get(node.computed_class) if node.computed_class else None
        if reason is None:
            reason = checker.static_reason(node)
        if reason:
            return (_FILTERED, node.node_class, reason, self.filter_phrase(node, placer, reason))
        if u.free_cpu < placer.cpu or u.free_mem < placer.mem or u.free_disk < placer.disk:
            dim = u.exhausted(placer.cpu, placer.mem, placer.disk, placer.cores)
            free = {"cpu": u.free_cpu, "memory": u.free_mem, "disk": u.free_disk}.get(dim, len(u.free_cores))
            need = {"cpu": placer.cpu, "memory": placer.mem, "disk": placer.disk}.get(dim, placer.cores)
            return (_EXHAUSTED, node.node_class, dim, free, need)
        if placer.networks:
            if placer.static_ports and u.static_port_conflict(placer.networks):
                return (_EXHAUSTED, node.node_class, DIM_PORT_COLLISION, None, None)
            if len(u.ports) + placer.dynamic_ports > u.max_port - u.min_port + 1:
                return (_SLOW, node.id)
        collisions = groups.get(placer.tg.name, 0) if groups else 0
        aff = placer.affinity_score(node) if placer.affinities else 0.0
        values = placer.spreads.node_values(node) if placer.spreads is not None else None
        return (_SCORED, u.cap_cpu, u.cap_mem, u.free_cpu, u.free_mem, collisions, aff, values)

    def _class_of(self, node, base=None) -> int:
        sig = self._signature(node, base)
        c = self.ids.get(sig)
        return self._new_class(sig) if c is None else c

    def _new_class(self, sig: tuple) -> int:
        c = self.ids[sig] = len(self.kind)
        self.kind.append(sig[0])
        self.info.append(sig)
        self.score.append(None)
        self.neg.append(_UNSCORED)
        self.stamp.append(-1)
        return c

    def position(self, node_id: str) -> int | None:
        last = self.last
        if last is not None and last[0] == node_id:
            return last[1]
        if self.layout is not None:  # from the permutation and the sorted index
            perm, columns = self.layout
            inverse = self._inverse
            if inverse is None:
                inverse = self._inverse = [0] * len(perm)
                for p, j in enumerate(perm):
                    inverse[j] = p
            j = columns.index.get(node_id)
            return None if j is None else inverse[j]
        if self._pos is None:
            self._pos = {node.id: i for i, node in enumerate(self.nodes)}
        return self._pos.get(node_id)

    def _usage(self, node, p: int):
        """The tracker's usage of the chosen node (at position `p`). For a node the plan has
        not touched, built as `UsageTracker.usage` builds it, from the base the node table
        read for this snapshot: the usage cache may hold another version of the node by now
        (a newer commit, or another scheduler thread's older snapshot)."""
        base = self.bases[self.layout[0][p]] if self.bases is not None else None
        return self.tracker.usage(node, base)

    def _refresh(self) -> None:
        log = self.tracker.log
        n = len(log)
        pneg = self.pneg
        if self.log_pos == n - 1:  # the usual case: one placement since the last walk
            i = self.position(log[-1])
            if i is not None:
                c = self.cls[i] = self._class_of(self.nodes[i])
                if pneg is not None:
                    pneg[i] = self._class_neg(c)
                    self.pmeta[i] = None
            self.log_pos = n
        elif self.log_pos < n:
            nodes, cls = self.nodes, self.cls
            for node_id in set(log[self.log_pos:]):
                i = self.position(node_id)
                if i is not None:
                    c = cls[i] = self._class_of(nodes[i])
                    if pneg is not None:
                        pneg[i] = self._class_neg(c)
                        self.pmeta[i] = None
            self.log_pos = len(log)
        spreads = self.placer.spreads
        if spreads is not None and spreads.version != self.spread_version:
            self.spread_version = spreads.version
            self.epoch += 1
            self.metas, self.class_scores = {}, {}  # entries of earlier epochs are stale
            self.neg = [_UNSCORED] * len(self.kind)

    def _score(self, c: int) -> tuple:
        info = self.info[c]
        _, cap_cpu, cap_mem, free_cpu, free_mem, collisions, aff, values = info
        if values is None:
            parts = self.known_scores.get(info)
            if parts is None:
                parts = self.known_scores[info] = score_parts(self.placer, cap_cpu, cap_mem, free_cpu, free_mem,
                                                              collisions, False, aff, 0.0, None)
        else:
            spread = self.placer.spreads.score_values(values)
            parts = score_parts(self.placer, cap_cpu, cap_mem, free_cpu, free_mem, collisions, False, aff, spread,
                                None)
        self.score[c] = parts
        self.neg[c] = -parts[0]
        self.stamp[c] = self.epoch
        return parts

    # --- one placement -------------------------------------------------------------------
    def select(self, sel, m):
        """The selector's choice for one placement (a RankedOption or None), or FALLBACK."""
        self._refresh()
        placer = self.placer
        nodes, cls, kind, score, stamp = self.nodes, self.cls, self.kind, self.score, self.stamp
        epoch, count, limit = self.epoch, len(self.nodes), placer.limit
        start = i = sel.cursor
        if limit < BULK_LIMIT:
            if limit < count:
                option = self._plain_window(sel, m, start, count, limit)
                if option is not None:
                    return option
            fast = None
        else:
            fast = self._all_scored(start, count, limit)
        if fast is not None:
            window, hits, best, best_score = fast
            sel.cursor = (start + len(window)) % count
            self._metrics(sel, m, start, window, hits)
            node = nodes[best]
            self.last = (node.id, best)
            return sel.option(node, self._usage(node, best), best_score, placer)
        best = -1
        best_score = 0.0
        seen = visited = 0
        skipped: list[int] = []
        hits: dict[int, int] = {}  # visits per class, in first-visit order (as the walk's counters)
        found: list[tuple[float, int, int]] = []  # (-score, offset in the window, class) of scored nodes
        while visited < count and seen < limit:
            p = i
            c = cls[p]
            i += 1
            if i == count:
                i = 0
            hits[c] = hits.get(c, 0) + 1
            visited += 1
            k = kind[c]
            if k:
                if k == _SLOW:
                    return FALLBACK
                continue
            parts = score[c] if stamp[c] == epoch else self._score(c)
            s = parts[0]
            found.append((-s, visited - 1, c))
            if s <= SKIP_SCORE_THRESHOLD and len(skipped) < MAX_SKIP:
                skipped.append(p)
                continue
            seen += 1
            if best < 0 or s > best_score:
                best, best_score = p, s
        for p in skipped:
            if seen >= limit:
                break
            seen += 1
            s = score[cls[p]][0]
            if best < 0 or s > best_score:
                best, best_score = p, s
        sel.cursor = i
        self._counters(sel, m, visited, hits)
        if found:
            # `found` is in window order: a stable sort on the score alone orders as (-score, offset)
            self._top(m, start, sorted(found, key=_FIRST) if len(found) <= SMALL_WINDOW
                      else heapq.nsmallest(TOP_SCORES, found))
        if best < 0:
            return None
        node = nodes[best]
        self.last = (node.id, best)
        return sel.option(node, self._usage(node, best), best_score, placer)

    def _plain_window(self, sel, m, start: int, count: int, limit: int):
        """The walk of a short window (limit < BULK_LIMIT) whose next `limit` nodes are all
        scored, each above SKIP_SCORE_THRESHOLD: the walk then visits exactly those nodes and
        picks the first of the best. The chosen option, or None when the window is not such
        a window (the node-by-node walk decides)."""
        choice = self._plain_choice(sel, start, count, limit)
        if choice is None:
            return None
        p, score, top, gaps = choice
        if gaps is None:
            m.evaluated += limit
        else:
            self.record_gaps(m, gaps)
        m.top = top
        node = self.nodes[p]
        return sel.option(node, self._usage(node, p), score, self.placer)

    def next_plain(self, sel):
        """The next placement's choice when the walk is a plain short window (see
        `_plain_window`): (position, score, score entries, gaps), the selector's cursor and
        counters moved as `select` moves them; None when `select` must decide (nothing
        moved). For a group without networks (no ports to draw). `gaps`: None, or what the
        walk visited besides the scored nodes (see `_gapped_choice`, `record_gaps`).

        Read from `pneg` (minus the score of each position's class; _GAP for filtered and
        exhausted nodes, _SKIPPED for a score the walk would skip): the window is the
        positions up to the `limit`-th scored one, found by counting the gaps of slices."""
        if self.log_pos != len(self.tracker.log) or self.pneg is None:
            self._refresh()
        count, limit = len(self.nodes), self.placer.limit
        if limit >= BULK_LIMIT or limit >= count:
            return None
        start = sel.cursor
        end = start + limit
        pneg = self.pneg
        if pneg is None:
            if self.placer.spreads is not None:  # (scores change with the spread counts)
                return self._plain_choice(sel, start, count, limit)
            negs = list(map(self._class_neg, range(len(self.kind))))
            pneg = self.pneg = list(map(negs.__getitem__, self.cls))
            self.pmeta = [None] * count
            kind = self.kind
            gapped = [c for c in set(self.cls) if kind[c]]
            self.gap_class = gapped[0] if len(gapped) == 1 else (-1 if not gapped else -2)
        if end > count:  # a window that may wrap: `_plain_choice` walks it
            return self._plain_choice(sel, start, count, limit)
        negs = pneg[start:end]
        gaps = negs.count(_GAP)
        while gaps:  # as many more positions as scored nodes are missing
            more = end + gaps
            if more > count:
                return self._plain_choice(sel, start, count, limit)
            tail = pneg[end:more]
            negs += tail
            gaps = tail.count(_GAP)
            end = more
        if _SKIPPED in negs:  # a score at or below SKIP_SCORE_THRESHOLD: the walk decides
            return None
        length = end - start
        # the window's offsets best first; ties: the earlier node (a stable sort on the score
        # alone; the gaps, _GAP = inf, last): the first is the walk's choice (the first of
        # the best, as its strict `>`). One sort of the offsets keyed by the list's C-level
        # __getitem__ is ~35% quicker than a float sort whose top values are then looked up
        # with `index` (~1.3 us of a placement); the same offsets.
        order = sorted(range(length), key=negs.__getitem__)
        first = order[0]
        pmeta = self.pmeta
        # the score entries, as `_entries`, kept per position while its class stays
        entries = []
        for t in order[:limit if limit < TOP_SCORES else TOP_SCORES]:
            pos = start + t
            entry = pmeta[pos]
            if entry is None:
                entry = pmeta[pos] = self.entry(self.cls[pos], pos)
            entries.append(entry)
        if length == limit:
            gaps = None
        elif self.gap_class >= 0:  # every gap of the list is of one class (full nodes alike)
            gaps = (length, ((self.gap_class, length - limit),))
        else:  # the filtered and exhausted nodes' classes, in walk order (`_gapped_choice`)
            window = self.cls[start:end]
            passed = list(compress(window, map(self.kind.__getitem__, window)))
            gaps = (length, tuple((c, passed.count(c)) for c in dict.fromkeys(passed)))
        sel.cursor = end if end < count else 0
        sel.nodes_scored += limit
        return start + first, -negs[first], entries, gaps

    def _class_neg(self, c: int) -> float:
        """The class's entry in `pneg` (see `next_plain`), scoring it if it was not; keeps
        `gap_class` (the one class of every gap so far, -1 before the first, -2 once there
        are several) for a class now held by a position."""
        if self.kind[c]:
            if self.gap_class != c:
                self.gap_class = c if self.gap_class == -1 else -2
            return _GAP
        parts = self.score[c] if self.stamp[c] == self.epoch else self._score(c)
        return -parts[0] if parts[0] > SKIP_SCORE_THRESHOLD else _SKIPPED

    def placed(self, p: int, node, u) -> None:
        """After `PlanBuilder._place_plain` placed on the node at `p` (`u`: its usage now):
        its class, as the next `_refresh` would work it out (the node passed the group's
        class-only checks; the group has no networks or spreads)."""
        placer = self.placer
        if u.free_cpu < placer.cpu or u.free_mem < placer.mem or u.free_disk < placer.disk:
            # `_signature` of a node that passed the group's class checks (and asks no cores)
            if u.free_cpu < placer.cpu:
                sig = (_EXHAUSTED, node.node_class, DIM_CPU, u.free_cpu, placer.cpu)
            elif u.free_mem < placer.mem:
                sig = (_EXHAUSTED, node.node_class, DIM_MEMORY, u.free_mem, placer.mem)
            else:
                sig = (_EXHAUSTED, node.node_class, DIM_DISK, u.free_disk, placer.disk)
            c = self.ids.get(sig)
            if c is None:
                c = self._new_class(sig)
        else:
            groups = u.group_counts
            sig = (_SCORED, u.cap_cpu, u.cap_mem, u.free_cpu, u.free_mem,
                   groups.get(placer.tg.name, 0) if groups else 0,
                   placer.affinity_score(node) if placer.affinities else 0.0, None)
            c = self.ids.get(sig)
            if c is None:
                c = self._new_class(sig)
        self.cls[p] = c
        if self.pneg is not None:
            self.pneg[p] = self._class_neg(c)
            self.pmeta[p] = None
        self.log_pos = len(self.tracker.log)

    def _plain_choice(self, sel, start: int, count: int, limit: int):
        """`_plain_window`'s decision: (position, score, score entries, gaps), or None."""
        cls, neg = self.cls, self.neg
        end = start + limit
        window = cls[start:end] if end <= count else cls[start:] + cls[: end - count]
        negs = list(map(neg.__getitem__, window))  # minus the scores: best first when sorted
        if max(negs) >= -SKIP_SCORE_THRESHOLD:  # a class not scored this epoch, or one skipped
            if any(map(self.kind.__getitem__, window)):
                return self._gapped_choice(sel, start, count, limit)
            negs = self._rescored(window)
            if negs is None:
                return None
        best = min(negs)
        offset = negs.index(best)  # the first of the best, as the walk's strict `>`
        sel.cursor = end if end < count else end - count
        sel.nodes_scored += limit
        # best first; ties: the earlier node (a stable sort on the score alone)
        top = sorted(range(limit), key=negs.__getitem__)[:TOP_SCORES]
        entries = self._entries(start, top, map(window.__getitem__, top))
        p = start + offset
        if p >= count:
            p -= count
        self.last = (self.nodes[p].id, p)
        return p, -best, entries, None

    def _rescored(self, classes: list[int]) -> list[float] | None:
        """Minus the scores of `classes` (scored kinds), each scored this epoch first; None
        when one is at or below SKIP_SCORE_THRESHOLD (a node the walk would skip)."""
        stamp, epoch, neg = self.stamp, self.epoch, self.neg
        for c in classes:
            if stamp[c] != epoch:
                self._score(c)
        negs = list(map(neg.__getitem__, classes))
        return None if max(negs) >= -SKIP_SCORE_THRESHOLD else negs

    def _gapped_choice(self, sel, start: int, count: int, limit: int):
        """`_plain_choice` of a window with filtered or exhausted nodes between its scored
        ones (late in W1 many nodes are full): the walk visits nodes until it has seen
        `limit` scored ones, each above SKIP_SCORE_THRESHOLD (else None: the node-by-node
        walk decides, as it does for a scarce-ports node or fewer than `limit` scored nodes
        in a whole lap). Returns (position, score, score entries, gaps): `gaps` is (nodes
        visited, ((class, visits), ...) of the filtered and exhausted classes in first-visit
        order), what `record_gaps` records as the walk's counters do."""
        cls, kind, neg = self.cls, self.kind, self.neg
        length = limit * 2
        while True:
            if length > count:
                length = count
            end = start + length
            window = cls[start:end] if end <= count else cls[start:] + cls[: end - count]
            kinds = list(map(kind.__getitem__, window))
            scored = list(compress(range(length), map(not_, kinds)))
            if len(scored) >= limit:
                break
            if length == count:
                return None
            length += 2 * (limit - len(scored)) + limit
        length = scored[limit - 1] + 1  # the walk stops at its limit-th scored node
        del scored[limit:], window[length:], kinds[length:]
        if _SLOW in kinds:
            return None
        ordered = list(map(window.__getitem__, scored))  # the scored nodes' classes in walk order
        negs = list(map(neg.__getitem__, ordered))
        if max(negs) >= -SKIP_SCORE_THRESHOLD:  # a class not scored this epoch, or one skipped
            negs = self._rescored(ordered)
            if negs is None:
                return None
        best = min(negs)
        i = negs.index(best)  # the first of the best, as the walk's strict `>`
        sel.cursor = (start + length) % count
        sel.nodes_scored += limit
        top = sorted(range(limit), key=negs.__getitem__)[:TOP_SCORES]
        entries = self._entries(start, map(scored.__getitem__, top), map(ordered.__getitem__, top))
        p = (start + scored[i]) % count
        self.last = (self.nodes[p].id, p)
        passed = list(compress(window, kinds))  # the filtered and exhausted nodes' classes
        first = passed[0]
        if passed.count(first) == len(passed):  # the usual case: one class (full nodes alike)
            return p, -best, entries, (length, ((first, len(passed)),))
        return p, -best, entries, (length, tuple((c, passed.count(c)) for c in dict.fromkeys(passed)))

    def record_gaps(self, m, gaps: tuple) -> None:
        """Record the counters of a gapped window's walk (`_gapped_choice`'s `gaps`)."""
        visited, unscored = gaps
        m.evaluated += visited
        self._record(m, unscored)

    def _all_scored(self, start: int, count: int, limit: int):
        """The walk in bulk for the common window: `limit` scored nodes, plus the filtered
        or exhausted nodes between them and the (at most MAX_SKIP) non-positive ones
        skipped; the choice is the first node of the best class outside the skipped ones.
        (window, best position, best score), or None when the walk must go node by node."""
        cls, kind, score, stamp, epoch = self.cls, self.kind, self.score, self.stamp, self.epoch
        length = limit + MAX_SKIP
        hits: Counter = Counter()
        counted = 0  # the length of the window `hits` counts
        while True:
            if length >= count:
                return None  # about a whole lap: the walk's own bounds apply
            end = start + length
            window = cls[start:end] if end <= count else cls[start:] + cls[: end - count]
            if counted and length >= counted:
                hits.update(window[counted:])  # a longer window: count what it gained
            else:
                hits = Counter(window)
            counted = length
            present = hits.keys()
            unscored = [c for c in present if kind[c]]
            if any(kind[c] == _SLOW for c in unscored):
                return None
            n_unscored = sum(hits[c] for c in unscored)
            if length - n_unscored >= limit + MAX_SKIP:
                break
            length = limit + MAX_SKIP + n_unscored + (length - n_unscored < limit) * limit
        excluded: list[int] = []  # window offsets not counted: unscored, and the first skipped
        for c in unscored:
            offset = -1
            for _ in range(hits[c]):
                offset = window.index(c, offset + 1)
                excluded.append(offset)
        candidates: list[int] = []
        for c in present:
            if not kind[c]:
                parts = score[c] if stamp[c] == epoch else self._score(c)
                if parts[0] <= SKIP_SCORE_THRESHOLD:
                    offset = -1
                    for _ in range(min(MAX_SKIP, hits[c])):
                        offset = window.index(c, offset + 1)
                        candidates.append(offset)
        candidates.sort()
        skipped = set(candidates[:MAX_SKIP])
        excluded.extend(skipped)
        excluded.sort()
        end = limit
        for offset in excluded:
            if offset >= end:
                break
            end += 1
        if end < len(window):
            if len(window) - end <= SHORT_TAIL:
                # the counts of window[:end]: the tail's visits taken off (a class whose first
                # visit is kept keeps its place in the order; one seen only in the tail goes)
                for c in window[end:]:
                    n = hits[c] - 1
                    if n:
                        hits[c] = n
                    else:
                        del hits[c]
                window = window[:end]
            else:
                window = window[:end]
                hits = Counter(window)
        best_score = None
        best_classes = []
        for c in hits:
            if kind[c]:
                continue
            s = score[c][0]
            if best_score is None or s > best_score:
                best_score, best_classes = s, [c]
            elif s == best_score:
                best_classes.append(c)
        best = None
        for c in best_classes:
            offset = -1
            while True:  # its first node not skipped, if any
                try:
                    offset = window.index(c, offset + 1)
                except ValueError:
                    offset = None
                    break
                if offset not in skipped:
                    break
            if offset is not None and (best is None or offset < best):
                best = offset
        if best is None:
            return None  # every best node was skipped: the walk compares the skipped ones
        return window, hits, (start + best) % count, best_score

    def _metrics(self, sel, m, start: int, window: list[int], hits: dict[int, int]) -> None:
        """The counters and top scores the node-by-node walk would have recorded (`window`:
        the class ids walked; `hits`: visits per class in first-visit order)."""
        if not self._counters(sel, m, len(window), hits):
            return
        kind, score = self.kind, self.score
        if len(window) <= SMALL_WINDOW:
            # every scored node, best first (ties: the earlier node in the window)
            found = [(-score[c][0], offset, c) for offset, c in enumerate(window) if not kind[c]]
            found.sort(key=_FIRST)  # in window order: stable on the score alone = by (-score, offset)
        else:
            found = self._top_nodes(window, hits)
            found.sort()
        self._top(m, start, found)

    def _counters(self, sel, m, visited: int, hits: dict[int, int]) -> int:
        """Record the walk's counters; returns the number of nodes scored."""
        m.evaluated += visited
        scored = self._record(m, hits.items())  # dicts keep first-visit order, as the walk's counters do
        sel.nodes_scored += scored
        return scored

    def _record(self, m, hits) -> int:
        """The filtered and exhausted nodes among `hits` ((class, visits) in first-visit
        order) into `m`; returns the visits of the other (scored) classes."""
        kind, info = self.kind, self.info
        scored = 0
        for c, n in hits:
            k = kind[c]
            if k == _FILTERED:
                _, node_class, reason, phrase = info[c]
                m.filter(node_class, reason, phrase, n)
            elif k == _EXHAUSTED:
                _, node_class, dim, free, need = info[c]
                m.exhaust(node_class, dim, free, need, n)
            else:
                scored += n
        return scored

    def _top(self, m, start: int, found: list[tuple[float, int, int]]) -> None:
        """Record the best scored nodes (`found`: (-score, offset, class), sorted) as the
        AllocMetric's score entries, best first (see `_entries`)."""
        found = found[:TOP_SCORES]
        m.top = self._entries(start, [f[1] for f in found], [f[2] for f in found])

    def entry(self, c: int, pos: int):
        """A new score entry of the node at `pos` (of class `c`), see `_entries`."""
        scores = self.class_scores.get(c)
        if scores is None:
            scores = self._class_scores(c)
        return NodeScoreMeta(node_id=self.nodes[pos].id, scores=scores, norm_score=self.score[c][0])

    def _entries(self, start: int, offsets, classes) -> list:
        """The score entries of the nodes at window `offsets` (of classes `classes`), in that
        order, as the AllocMetric's `score_meta_data`. A node's entry depends only on its
        class's score, fixed within an epoch: entries are kept per (class, node) for the
        epoch and shared by the allocs of the eval (read-only)."""
        metas, count = self.metas, len(self.nodes)
        get = metas.get
        top = []
        for offset, c in zip(offsets, classes):
            pos = start + offset
            if pos >= count:
                pos -= count
            key = c * count + pos
            entry = get(key)
            if entry is None:
                scores = self.class_scores.get(c)
                if scores is None:
                    scores = self._class_scores(c)
                entry = metas[key] = NodeScoreMeta(node_id=self.nodes[pos].id, scores=scores,
                                                   norm_score=self.score[c][0])
            top.append(entry)
        return top

    def _class_scores(self, c: int) -> dict:
        """The class's score map (score_meta's), kept for the epoch."""
        parts = self.score[c]
        scores = _MAP_OF.get(parts)
        if scores is None:
            final, fit, anti, pen, aff, spread = parts
            scores = score_meta((final, "", fit, anti, pen, aff, spread, 0.0, 0.0), self.shared_scores).scores
            if len(_MAP_OF) > _CACHE_LIMIT:
                _MAP_OF.clear()
            _MAP_OF[parts] = scores
        self.class_scores[c] = scores
        return scores

    def _top_nodes(self, window: list[int], hits: dict[int, int]) -> list[tuple]:
        """(-score, offset, class) of the first nodes of the classes that hold the 5 best
        nodes of a long window: a superset of the 5 best."""
        kind, score = self.kind, self.score
        top = [(score[c][0], c) for c in hits if not kind[c]]  # (score, class) of scored classes
        top.sort(key=lambda t: -t[0])
        wanted: dict[int, int] = {}
        total = 0
        threshold = None
        for s, c in top:
            if threshold is not None and s < threshold:
                break
            wanted[c] = min(hits[c], TOP_SCORES)
            total += hits[c]
            if total >= TOP_SCORES and threshold is None:
                threshold = s
        found: list[tuple[float, int, int]] = []
        for c, k in wanted.items():  # the first k nodes of each such class
            offset = -1
            for _ in range(k):
                offset = window.index(c, offset + 1)
                found.append((-score[c][0], offset, c))
        return found

