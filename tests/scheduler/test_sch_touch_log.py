"""The node table reads only the nodes a commit touched (`Tables.touch_log`).

`nodetable.Columns.usage_keys` used to read every candidate's usage index per evaluation
(`node_usage_versions` of all 5,000 nodes in W1, then a 5,000-wide compare). It now reads
the index keys each commit touched since the snapshot it read last (or, for an older
snapshot of the other scheduler thread, up to the newest it read) and only those nodes'
versions. Whatever the order of snapshots, its keys and bases must be those of a full
read; when the log does not reach back (more than TOUCH_LOG_MAX commits, another state's
log), it reads every node as before."""

from __future__ import annotations

from random import Random

from yurt.scheduler import nodetable
from yurt.state import AllocClientUpdate, JobRegister, NodeRegister, PlanApply, StateStore
from yurt.state.commands import AllocUpdate
from yurt.state.tables import TOUCH_LOG_MAX
from yurt.structs import evolve, generate_uuid
from yurt.testing.mock import mock_alloc

from .test_nodetable_versions import _job, _node


class _NoLog:
    """A snapshot without a touch log: the node table reads every node (the reference)."""

    def __init__(self, snap) -> None:
        self._snap = snap

    def __getattr__(self, name):
        if name == "touch_log":
            raise AttributeError(name)
        return getattr(self._snap, name)


class _Counting:
    """A snapshot counting the usage index keys read."""

    def __init__(self, snap, reads: list[int]) -> None:
        self._snap, self._reads = snap, reads

    def node_usage_versions(self, keys):
        self._reads.append(len(keys))
        return self._snap.node_usage_versions(keys)

    def __getattr__(self, name):
        return getattr(self._snap, name)


def _store(n_nodes: int):
    store = StateStore.open(None)
    nodes = [_node(i) for i in range(n_nodes)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    store.apply(JobRegister(job=_job("filler", 1)))
    return store, nodes


def _place(store, nodes, rng: Random, allocs: list) -> None:
    filler = store.snapshot().job_by_id("default", "filler")
    on = rng.sample(nodes, rng.randint(1, 3))
    placed = {}
    for node in on:
        a = evolve(mock_alloc(filler, node), id=generate_uuid(), job=None, client_status="pending",
                   name=f"filler.web[{len(allocs)}]")
        allocs.append(a)
        placed[node.id] = [a]
    store.apply(PlanApply(eval_id=generate_uuid(), job=filler, node_allocation=placed, updated_at=1))


def _report(store, rng: Random, allocs: list, status: str) -> None:
    """A client update: `running` moves no usage index, `complete` does (the alloc stops counting)."""
    if not allocs:
        return
    picked = rng.sample(allocs, min(len(allocs), rng.randint(1, 4)))
    updates = [AllocUpdate(id=a.id, client_status=status) for a in picked]
    store.apply(AllocClientUpdate(allocs=updates, updated_at=2))
    if status == "complete":
        for a in picked:
            allocs.remove(a)


def _same(a: tuple, b: tuple) -> None:
    keys_a, list_a, bases_a = a
    keys_b, list_b, bases_b = b
    assert [list_a[k][0] for k in keys_a] == [list_b[k][0] for k in keys_b]
    for x, y in zip(bases_a, bases_b):
        assert (x.free_cpu, x.free_mem, x.free_disk, x.ports, dict(x.jobs.items())) == \
               (y.free_cpu, y.free_mem, y.free_disk, y.ports, dict(y.jobs.items()))
        assert x.version == y.version


def _read(columns, snap, reads=None):
    keys, key_list, bases = columns.usage_keys(_Counting(snap, reads) if reads is not None else snap)
    return list(keys), list(key_list), list(bases)


def test_reads_only_touched_nodes_and_matches_a_full_read_in_any_snapshot_order():
    rng = Random(5)
    store, nodes = _store(40)
    allocs: list = []
    fed = nodetable.Columns(sorted(nodes, key=lambda n: n.id))
    full = nodetable.Columns(sorted(nodes, key=lambda n: n.id))
    reads: list[int] = []
    snaps = [store.snapshot()]
    for step in range(60):
        for _ in range(rng.randint(0, 3)):
            kind = rng.random()
            if kind < 0.5:
                _place(store, nodes, rng, allocs)
            else:
                _report(store, rng, allocs, "running" if kind < 0.75 else "complete")
        snaps.append(store.snapshot())
        # the newest snapshot, or one a few commits older (the other scheduler thread's)
        snap = snaps[-1] if rng.random() < 0.6 else snaps[max(0, len(snaps) - 1 - rng.randint(1, 4))]
        _same(_read(fed, snap, reads), _read(full, _NoLog(snap)))
    assert fed.scans == 1  # only the first read was of every node
    assert full.scans == 60
    assert reads[0] == 40 and max(reads[1:]) < 20  # the later reads: only the touched nodes


def test_full_read_when_the_log_does_not_reach_back_or_is_another_states():
    rng = Random(9)
    store, nodes = _store(10)
    allocs: list = []
    columns = nodetable.Columns(sorted(nodes, key=lambda n: n.id))
    reference = nodetable.Columns(sorted(nodes, key=lambda n: n.id))
    first = store.snapshot()
    _same(_read(columns, first), _read(reference, _NoLog(first)))
    for _ in range(TOUCH_LOG_MAX + 5):  # more commits than the log keeps
        _place(store, nodes, rng, allocs)
    snap = store.snapshot()
    _same(_read(columns, snap), _read(reference, _NoLog(snap)))
    assert columns.scans == 2
    _same(_read(columns, first), _read(reference, _NoLog(first)))  # back past the log's floor
    assert columns.scans == 3
    _same(_read(columns, snap), _read(reference, _NoLog(snap)))  # (from that old read: past the floor again)
    assert columns.scans == 4
    _place(store, nodes, rng, allocs)
    snap = store.snapshot()
    _same(_read(columns, snap), _read(reference, _NoLog(snap)))
    assert columns.scans == 4  # one commit later: from the log again

    # another state (e.g. restored) with the same nodes: its log says nothing about this one's
    other, _ = _store(10)
    _place(other, nodes, Random(1), [])
    snap = other.snapshot()
    _same(_read(columns, snap), _read(reference, _NoLog(snap)))
    assert columns.scans == 5


def test_touch_log_keeps_the_last_commits_and_their_keys():
    store, nodes = _store(3)
    rng = Random(2)
    allocs: list = []
    start = store.snapshot().index
    for _ in range(TOUCH_LOG_MAX + 3):
        _place(store, nodes, rng, allocs)
    lineage, floor, entries = store.snapshot().touch_log()
    assert len(entries) == TOUCH_LOG_MAX
    assert floor == entries[0][0] - 1 and floor > start
    assert [i for i, _ in entries] == list(range(floor + 1, store.snapshot().index + 1))
    last = allocs[-1]
    assert "allocs:node-usage:" + last.node_id in entries[-1][1]
    assert store.snapshot().touch_log()[0] is lineage
    assert _store(1)[0].snapshot().touch_log()[0] is not lineage
