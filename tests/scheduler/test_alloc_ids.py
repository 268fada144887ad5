"""Alloc IDs drawn in batches must still be random UUID v4 strings, never repeated."""

from __future__ import annotations

import uuid

from yurt.structs import Resources, evolve
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_job, mock_node


def test_placed_allocs_have_distinct_v4_uuids():
    h = Harness()
    for _ in range(3):
        h.add_node(mock_node())
    job = mock_job()
    tg = job.task_groups[0]
    tiny = evolve(tg.tasks[0], resources=Resources(cpu=10, memory_mb=10))
    job = evolve(job, task_groups=[evolve(tg, count=600, networks=None, tasks=[tiny])])
    h.process(h.register_job(job))
    ids = [a.id for a in h.job_allocs(job)]
    assert len(ids) == 600  # more than one batch of 256
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
