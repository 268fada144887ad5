"""An evaluation's objects (selector, class windows, usage tracker) form no reference
cycles: they are freed when the eval ends, not left to the cyclic GC (whose collections
walk the young objects of every scheduler thread)."""

from __future__ import annotations

import gc

from yurt.testing.harness import Harness
from yurt.testing.mock import mock_job, mock_node
from yurt.structs import evolve


def test_an_eval_leaves_no_cyclic_garbage():
    h = Harness()
    for _ in range(40):
        h.add_node(mock_node())
    job = mock_job()
    ev = h.register_job(evolve(job, task_groups=[evolve(job.task_groups[0], count=60)]))
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        h.process(ev)
        assert sum(len(a) for a in h.plans[-1].node_allocation.values()) == 60
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        names = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert not names & {"ClassWindow", "NodeSelector", "UsageTracker", "NodeUsage", "PlanBuilder"}, names
