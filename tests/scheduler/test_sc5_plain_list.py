"""`ClassWindow.next_plain` reads its windows from a per-position list of minus scores
(`pneg`, gaps and skipped scores as marker objects). These runs of the gapped-window
sequences (test_sc4_gapped_window) check that the list path itself decided windows with
gaps of one class and of several, and that its plans equal the general path's and the
node-by-node walk's; and that a wrong gap count in it shows in the plans."""

from __future__ import annotations

import os

import pytest

from yurt.scheduler import placement as placement_mod
from yurt.scheduler import select as select_mod
from yurt.scheduler import window as window_mod

from .helpers import plans_three_ways
from .test_sc4_gapped_window import _run

_SEEN = {"plain": 0, "one_gap_class": 0, "several": 0}


def _counting(monkeypatch) -> None:
    real = window_mod.ClassWindow.next_plain
    wrapped = window_mod.ClassWindow._plain_choice

    def counted(self, sel):
        self._in_choice = False
        choice = real(self, sel)
        if choice is not None and not self._in_choice:  # decided from the list
            _SEEN["plain"] += 1
            gaps = choice[3]
            if gaps is not None:
                _SEEN["one_gap_class" if len(gaps[1]) == 1 else "several"] += 1
        return choice

    def plain_choice(self, *args):
        self._in_choice = True
        return wrapped(self, *args)

    monkeypatch.setattr(window_mod.ClassWindow, "next_plain", counted)
    monkeypatch.setattr(window_mod.ClassWindow, "_plain_choice", plain_choice)


@pytest.mark.parametrize("seed", range(8, 14))
def test_list_windows_place_as_the_general_path_and_the_node_walk(seed, monkeypatch):
    _counting(monkeypatch)
    plain, general, stepped = plans_three_ways(_run, seed, monkeypatch)
    assert plain == general
    assert plain == stepped


def test_list_windows_were_decided():
    # runs after the parametrized cases (file order)
    if not _SEEN["plain"]:
        pytest.skip("run together with test_list_windows_place_as_the_general_path_and_the_node_walk")
    assert _SEEN["plain"] > 1000
    assert _SEEN["one_gap_class"] > 100
    assert _SEEN["several"] > 100


def test_a_miscounted_gap_in_the_list_path_changes_the_plans(monkeypatch):
    monkeypatch.setattr(placement_mod, "os", os)
    real = window_mod.ClassWindow.next_plain

    def off_by_one(self, sel):
        choice = real(self, sel)
        if choice is not None and choice[3] is not None:
            length, passed = choice[3]
            choice = (*choice[:3], (length + 1, passed))
        return choice

    monkeypatch.setattr(window_mod.ClassWindow, "next_plain", off_by_one)
    wrong = _run(9)
    monkeypatch.setattr(select_mod, "window_applies", lambda placer: False)
    assert wrong != _run(9)
