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


def test_a_batch_is_the_uuid4_of_each_16_random_bytes_in_draw_order():
    """...but for the last 2 bytes (4 hex digits) of each: the locality hint of its run."""
    from random import Random

    from yurt.scheduler.placement import _ID_BATCH, PlanBuilder

    builder = PlanBuilder.__new__(PlanBuilder)
    builder._ids, builder._id_pool = Random(5), []
    drawn = [builder._alloc_id() for _ in range(_ID_BATCH + 1)]
    raw = Random(5).randbytes(16 * _ID_BATCH * 2)
    chunks = [raw[i:i + 16] for i in range(0, len(raw), 16)]
    expected = [str(uuid.UUID(bytes=c, version=4)) for c in chunks[:_ID_BATCH]][::-1]  # popped from the end
    expected.append(str(uuid.UUID(bytes=chunks[2 * _ID_BATCH - 1], version=4)))
    assert [d[:32] for d in drawn] == [e[:32] for e in expected]


def test_ids_handed_out_in_a_row_share_a_hint_per_run_and_runs_differ():
    from random import Random

    from yurt.scheduler.placement import _ID_BATCH, PlanBuilder
    from yurt.structs.ids import HINT_RUN

    builder = PlanBuilder.__new__(PlanBuilder)
    builder._ids, builder._id_pool = Random(7), []
    drawn = [builder._alloc_id() for _ in range(4 * _ID_BATCH)]
    assert len(set(drawn)) == len(drawn)
    runs = [drawn[i:i + HINT_RUN] for i in range(0, len(drawn), HINT_RUN)]
    hints = [{d[32:] for d in run} for run in runs]
    assert all(len(h) == 1 for h in hints)
    assert len({h.pop() for h in hints}) == len(runs)  # each run its own block
    for text in drawn:  # still UUID v4, the short ID (first 8) random
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
    assert len({d[:8] for d in drawn}) > len(drawn) * 0.99


def test_two_builders_never_share_a_hint():
    """The block counter is process-wide: two scheduler workers' builders (two threads)
    draw different blocks."""
    import threading
    from random import Random

    from yurt.scheduler.placement import PlanBuilder

    out: list[list[str]] = [[], []]

    def draw(i: int) -> None:
        builder = PlanBuilder.__new__(PlanBuilder)
        builder._ids, builder._id_pool = Random(i), []
        out[i].extend(builder._alloc_id() for _ in range(5000))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not {d[32:] for d in out[0]} & {d[32:] for d in out[1]}
