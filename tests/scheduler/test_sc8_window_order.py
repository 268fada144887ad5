"""`ClassWindow.next_plain` orders a window's offsets with one sort keyed by the minus
scores (wt-sc8). Its choice and score entries are checked here against the node walk's
rule, written out plainly: the window is the positions up to the `limit`-th scored one
(gaps between), the choice is the first node of the best score (the walk's strict `>`),
and the entries are the best `min(limit, 5)` nodes, best first, ties by the earlier node.
Windows with many ties and gaps, on random lists; the plans of whole evaluations are
compared with the general path and the node walk in test_sc5_plain_list."""

from __future__ import annotations

from random import Random
from types import SimpleNamespace

import pytest

from yurt.scheduler import window as window_mod
from yurt.scheduler.window import _GAP, ClassWindow


def _window(pneg: list, limit: int) -> ClassWindow:
    count = len(pneg)
    win = object.__new__(ClassWindow)
    gap = count  # one class for every gap, after the per-position scored classes
    win.nodes = [SimpleNamespace(id=f"n{p}") for p in range(count)]
    win.tracker = SimpleNamespace(log=[])
    win.log_pos = 0
    win.placer = SimpleNamespace(limit=limit, spreads=None)
    win.pneg = list(pneg)
    win.pmeta = [None] * count
    win.cls = [gap if v is _GAP else p for p, v in enumerate(pneg)]
    win.kind = [0] * count + [2]
    win.gap_class = gap
    return win


def _walk(pneg: list, start: int, limit: int):
    """(choice, entry positions, window length) as the node-by-node walk decides."""
    scored = []
    p = start
    while len(scored) < limit:
        if pneg[p] is not _GAP:
            scored.append(p)
        p += 1
    best = min(scored, key=lambda q: (pneg[q], q))
    top = sorted(scored, key=lambda q: (pneg[q], q))[:min(limit, 5)]
    return best, top, p - start


@pytest.mark.parametrize("seed", range(6))
def test_next_plain_choice_and_entries_follow_the_walk(seed, monkeypatch):
    monkeypatch.setattr(ClassWindow, "entry", lambda self, c, pos: pos)
    rng = Random(seed)
    decided = 0
    for _ in range(300):
        count = rng.randint(40, 120)
        limit = rng.choice((2, 3, 5, 7, 13))
        values = [-rng.choice((0.2, 0.5, 0.9)) - rng.randrange(3) / 7 for _ in range(rng.randint(1, 4))]
        gaps = rng.random() * 0.6
        pneg = [_GAP if rng.random() < gaps else rng.choice(values) for _ in range(count)]
        start = rng.randrange(count - limit)
        if sum(v is not _GAP for v in pneg[start:]) < limit * 3:
            continue
        win = _window(pneg, limit)
        sel = SimpleNamespace(cursor=start, nodes_scored=0)
        choice = win.next_plain(sel)
        if choice is None:  # a window running past the end: `_plain_choice` decides
            continue
        best, top, length = _walk(pneg, start, limit)
        pos, score, entries, gap_counts = choice
        assert pos == best
        assert score == -pneg[best]
        assert entries == top
        assert sel.cursor == (start + length) % count
        assert (gap_counts is None) == (length == limit)
        if gap_counts is not None:
            assert gap_counts == (length, ((count, length - limit),))
        decided += 1
    assert decided > 150


def test_a_reversed_tie_order_is_seen(monkeypatch):
    """The check above sees an order that breaks ties by the later node."""
    monkeypatch.setattr(ClassWindow, "entry", lambda self, c, pos: pos)
    real = sorted

    def later_first(iterable, key=None):
        items = list(iterable)
        out = real(items, key=key)
        if key is not None:  # ties by the later offset
            out = real(items, key=lambda q: (key(q), -q))
        return out

    monkeypatch.setattr(window_mod, "sorted", later_first, raising=False)
    pneg = [-0.5, -0.9, -0.9, -0.5, -0.9, -0.2, -0.2, -0.9] * 4
    win = _window(pneg, 5)
    pos, _, entries, _ = win.next_plain(SimpleNamespace(cursor=0, nodes_scored=0))
    best, top, _ = _walk(pneg, 0, 5)
    assert (pos, entries) != (best, top)
