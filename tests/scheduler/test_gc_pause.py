"""The cyclic GC is paused for a whole evaluation, plan submission included, and comes
back once the evaluation's objects are freed (a collection that starts while they are
alive walks them all: `yurt.gcpolicy`)."""

from __future__ import annotations

import gc

from yurt.testing.harness import Harness
from yurt.testing.mock import mock_job, mock_node
from yurt.structs import evolve


def test_gc_paused_for_the_whole_eval():
    h = Harness()
    for _ in range(5):
        h.add_node(mock_node())
    job = mock_job()
    ev = h.register_job(evolve(job, task_groups=[evolve(job.task_groups[0], count=8)]))
    seen = []
    submit, update = h.submit_plan, h.update_eval

    def submit_plan(plan):
        seen.append(("submit", gc.isenabled()))
        return submit(plan)

    def update_eval(e):
        seen.append(("update", gc.isenabled()))
        return update(e)

    h.submit_plan, h.update_eval = submit_plan, update_eval
    assert gc.isenabled()
    h.process(ev)
    assert gc.isenabled()
    assert seen == [("submit", False), ("update", False)], seen
    assert sum(len(a) for a in h.plans[-1].node_allocation.values()) == 8


def test_gc_comes_back_when_the_eval_fails():
    h = Harness()
    h.add_node(mock_node())
    ev = h.register_job(mock_job())

    def submit_plan(plan):
        raise RuntimeError("plan applier gone")

    h.submit_plan = submit_plan
    try:
        h.process(ev)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    assert gc.isenabled()
