"""The node table (`scheduler/nodetable.py`) keeps each node's usage across evaluations,
keyed by the node's usage version (`node_allocs_index`). A node that filled up between two
evaluations must be seen full by the second one, and an evaluation on an older snapshot
(another scheduler thread) must see the node as that snapshot has it: a class worked out
from a stale version would send the placement to a node without room."""

from __future__ import annotations

from yurt.scheduler import new_scheduler, nodetable
from yurt.scheduler import usage as usage_mod
from yurt.scheduler.node_class import computed_class
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import Evaluation, Resources, evolve, generate_uuid
from yurt.structs.node import NodeCpuResources
from yurt.testing.mock import mock_alloc, mock_job, mock_node

from .test_equivalence import _digest, _Recorder
from .test_equivalence_store import _Unversioned

NODE_CPU = 1000
TASK_CPU = 100


def _job(job_id: str, count: int):
    job = mock_job(id=job_id)
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], resources=Resources(cpu=TASK_CPU, memory_mb=64))
    return evolve(job, task_groups=[evolve(tg, count=count, networks=None, tasks=[task])])


def _node(i: int):
    node = mock_node(id=f"0000000{i}-0000-4000-8000-000000000000")
    res = evolve(node.node_resources, networks=None,
                 cpu=NodeCpuResources(cpu_shares=NODE_CPU, total_cpu_cores=4, reservable_cpu_cores=[0, 1, 2, 3]))
    node = evolve(node, node_resources=res, reserved_resources=None)
    return evolve(node, computed_class=computed_class(node))


def _fill(store: StateStore, node, n: int, start: int) -> None:
    """`n` more allocs of the filler job on `node` (TASK_CPU each)."""
    filler = store.snapshot().job_by_id("default", "filler")
    template = evolve(mock_alloc(filler, node), job=None, client_status="running")
    allocs = [evolve(template, id=generate_uuid(), name=f"filler.web[{start + i}]") for i in range(n)]
    store.apply(PlanApply(eval_id=generate_uuid(), job=filler, node_allocation={node.id: allocs}, updated_at=1))


def _placed_on(snap, eval_id: str) -> tuple[list[str], str]:
    """Nodes of the probe job's placements in one eval on `snap`, and the plan's digest."""
    job = snap.job_by_id("default", "probe")
    planner = _Recorder()
    ev = Evaluation(id=eval_id, namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    new_scheduler(job.type, snap, planner, now_ns=1_000_000_000).process(ev)
    nodes = [a.node_id for plan in planner.plans for allocs in plan.node_allocation.values() for a in allocs]
    return nodes, _digest(planner)


def _reference(snap, eval_id: str) -> tuple[list[str], str]:
    """The same eval reading every node's allocs (no node table, no usage cache)."""
    saved = dict(usage_mod._BASE_CACHE)
    usage_mod._BASE_CACHE.clear()
    try:
        return _placed_on(_Unversioned(snap), eval_id)
    finally:
        usage_mod._BASE_CACHE.clear()
        usage_mod._BASE_CACHE.update(saved)


def test_node_filled_between_evals_is_not_chosen_and_older_snapshots_see_their_version(monkeypatch):
    store = StateStore.open(None)
    busy, idle = _node(1), _node(2)
    store.apply_batch([NodeRegister(node=busy), NodeRegister(node=idle)])
    store.apply(JobRegister(job=_job("filler", 1)))
    store.apply(JobRegister(job=_job("probe", 1)))
    _fill(store, busy, 5, 0)  # half full: binpacking prefers it
    older = store.snapshot()
    eval_id = "00000000-0000-4000-8000-0000000000aa"

    chosen, digest = _placed_on(older, eval_id)
    assert chosen == [busy.id]
    assert digest == _reference(older, eval_id)[1]
    table = nodetable._TABLE
    assert table is not None

    _fill(store, busy, 5, 5)  # now full (no node written: the same node table)
    newer = store.snapshot()
    chosen, digest = _placed_on(newer, eval_id)
    assert nodetable._TABLE is table  # the kept per-node work was used, updated for the full node
    assert chosen == [idle.id]
    assert digest == _reference(newer, eval_id)[1]

    # another scheduler thread on the older snapshot: the busy node as it was there, taken
    # back from the version kept before, without reading its allocs or the usage cache
    # (which holds the newer version)
    calls: list[str] = []
    real_cached, real_base = nodetable.cached_base, nodetable.node_base
    monkeypatch.setattr(nodetable, "cached_base", lambda node, *a: calls.append(node.id) or real_cached(node, *a))
    monkeypatch.setattr(nodetable, "node_base", lambda node, *a: calls.append(node.id) or real_base(node, *a))
    chosen, digest = _placed_on(older, eval_id)
    assert calls == []
    assert chosen == [busy.id]
    assert digest == _reference(older, eval_id)[1]

    chosen, digest = _placed_on(newer, eval_id)  # and back
    assert calls == []
    assert chosen == [idle.id]
    assert digest == _reference(newer, eval_id)[1]
    assert nodetable._TABLE is table


def test_node_holding_the_jobs_own_allocs_is_seen_at_the_snapshots_version():
    """A node holding the job's own allocs takes the per-node path of the class walk (its
    collisions), from the usage the node table keeps: it must be the snapshot's version,
    for a newer snapshot and for an older one alike."""
    store = StateStore.open(None)
    busy, idle = _node(1), _node(2)
    store.apply_batch([NodeRegister(node=busy), NodeRegister(node=idle)])
    store.apply(JobRegister(job=_job("filler", 1)))
    store.apply(JobRegister(job=_job("probe", 4)))
    _fill(store, busy, 7, 0)
    probe = store.snapshot().job_by_id("default", "probe")
    template = evolve(mock_alloc(probe, busy), job=None, client_status="running")

    def commit_probe(i: int) -> None:
        store.apply(PlanApply(eval_id=generate_uuid(), job=probe, updated_at=1, node_allocation={
            busy.id: [evolve(template, id=generate_uuid(), name=f"probe.web[{i}]")]}))

    commit_probe(0)
    older = store.snapshot()  # busy: room for two more
    commit_probe(1)
    newer = store.snapshot()  # busy: room for one more
    eval_id = "00000000-0000-4000-8000-0000000000bb"
    # (a usage of the wrong version for the node chosen first would place the second
    # alloc on the other node)
    for snap, expected in ((older, [busy.id, busy.id, idle.id]), (newer, [busy.id, idle.id]),
                           (older, [busy.id, busy.id, idle.id]), (newer, [busy.id, idle.id])):
        chosen, digest = _placed_on(snap, eval_id)
        assert sorted(chosen) == sorted(expected)
        assert digest == _reference(snap, eval_id)[1]


def test_eval_on_an_older_snapshot_keeps_the_newer_cached_usage():
    """An eval on a snapshot older than one the node table read counts a node it never saw
    at that version, without putting that older count into the usage cache in place of the
    newer version (which the next eval and the plan applier read)."""
    store = StateStore.open(None)
    busy, idle = _node(1), _node(2)
    store.apply_batch([NodeRegister(node=busy), NodeRegister(node=idle)])
    store.apply(JobRegister(job=_job("filler", 1)))
    store.apply(JobRegister(job=_job("probe", 1)))
    eval_id = "00000000-0000-4000-8000-0000000000cc"
    _fill(store, busy, 4, 0)
    oldest = store.snapshot()
    snaps = []
    for step in range(3):  # the table reads three newer versions of the busy node
        _fill(store, busy, 1, 4 + step)
        snaps.append(store.snapshot())
        assert _placed_on(snaps[-1], eval_id)[0] == [busy.id]
    newest = snaps[-1]
    node = newest.node_by_id(busy.id)
    assert usage_mod.cached_base(node, newest.node_allocs_index(busy.id)) is not None

    chosen, digest = _placed_on(oldest, eval_id)
    assert chosen == [busy.id]
    assert digest == _reference(oldest, eval_id)[1]
    assert usage_mod.cached_base(node, newest.node_allocs_index(busy.id)) is not None
