"""The node reconciler's buckets for the cases its common-case path must leave to the
general one: duplicates on a node (the older alloc kept whatever the input order), a job of
two groups, terminal allocs, an older job version, and the desired-update counts."""

import random

from yurt.structs import evolve
from yurt.scheduler.reconcile_node import NodeReconciler
from yurt.testing.mock import mock_alloc, mock_node, mock_system_job


def _reconcile(job, allocs, nodes, sysbatch=False):
    by_id = {n.id: n for n in nodes}
    return NodeReconciler(job, allocs, nodes, by_id.get, sysbatch).compute()


def _job(groups=("web",)):
    job = mock_system_job()
    tg = job.task_groups[0]
    return evolve(job, task_groups=[evolve(tg, name=name) for name in groups])


def _alloc(job, node, group="web", create_index=1, **overrides):
    alloc = mock_alloc(job, node, task_group=group, name=f"{job.id}.{group}[0]", **overrides)
    return evolve(alloc, job=None, job_version=job.version, create_index=create_index, client_status="running")


def test_duplicate_on_a_node_keeps_the_older_in_any_input_order():
    job, nodes = _job(), [mock_node() for _ in range(3)]
    older = _alloc(job, nodes[0], create_index=5)
    newer = _alloc(job, nodes[0], create_index=9)
    others = [_alloc(job, n, create_index=7) for n in nodes[1:]]
    for allocs in ([older, newer, *others], [newer, *others, older], [*others, newer, older]):
        result = _reconcile(job, allocs, nodes)
        assert [s.alloc.id for s in result.stop] == [newer.id]
        assert result.place == []
        du = result.desired_tg_updates["web"]
        assert (du.ignore, du.stop, du.place) == (3, 1, 0)


def test_two_groups_place_what_each_node_lacks_node_by_node():
    job, nodes = _job(("web", "side")), [mock_node() for _ in range(3)]
    allocs = [_alloc(job, nodes[0], "side"), _alloc(job, nodes[1], "web")]
    result = _reconcile(job, allocs, nodes)
    got = [(node.id, req.task_group.name) for node, req in result.place]
    assert got == [(nodes[0].id, "web"), (nodes[1].id, "side"), (nodes[2].id, "web"), (nodes[2].id, "side")]
    assert sorted(result.desired_tg_updates) == ["side", "web"]  # (a map in Nomad: its order is not part of the result)
    assert result.desired_tg_updates["web"].place == 2 and result.desired_tg_updates["side"].place == 2
    assert result.desired_tg_updates["web"].ignore == 1 and result.desired_tg_updates["side"].ignore == 1


def test_terminal_allocs_are_replaced_and_a_completed_sysbatch_one_is_not():
    job, nodes = _job(), [mock_node() for _ in range(2)]
    failed = evolve(_alloc(job, nodes[0]), client_status="failed")
    stopped = evolve(_alloc(job, nodes[1]), desired_status="stop")
    result = _reconcile(job, [failed, stopped], nodes)
    assert sorted(n.id for n, _ in result.place) == sorted(n.id for n in nodes)
    done = evolve(_alloc(job, nodes[0]), client_status="complete")
    result = _reconcile(evolve(job, type="sysbatch"), [done], nodes, sysbatch=True)
    assert [n.id for n, _ in result.place] == [nodes[1].id]
    assert result.desired_tg_updates["web"].ignore == 1


def test_an_older_version_is_updated_and_the_current_one_ignored():
    job, nodes = _job(), [mock_node() for _ in range(2)]
    job = evolve(job, version=3)
    current = _alloc(job, nodes[0])
    old = evolve(_alloc(job, nodes[1]), job_version=2)
    calls = []

    def update_fn(alloc, new_job, tg):
        calls.append(alloc.id)
        return "destructive"

    by_id = {n.id: n for n in nodes}
    result = NodeReconciler(job, [current, old], nodes, by_id.get, False, update_fn).compute()
    assert calls == [old.id]  # the current alloc is not asked about
    du = result.desired_tg_updates["web"]
    assert (du.ignore, du.destructive_update, du.place) == (1, 1, 0)
    assert [req.previous.id for _, req in result.place] == [old.id]


def test_counts_match_over_a_shuffled_mix():
    """Shuffling the input changes nothing: the reconciler orders allocs itself."""
    job, nodes = _job(("web", "side")), [mock_node() for _ in range(12)]
    allocs = []
    for i, node in enumerate(nodes):
        if i % 3:
            allocs.append(_alloc(job, node, "web", create_index=i))
        if i % 4 == 0:
            allocs.append(_alloc(job, node, "side", create_index=50 + i))
        if i == 5:
            allocs.append(_alloc(job, node, "web", create_index=99))  # a duplicate
        if i == 7:
            allocs.append(evolve(_alloc(job, node, "side", create_index=70), client_status="lost"))
    first = _reconcile(job, allocs, nodes)
    rng = random.Random(3)
    for _ in range(5):
        mixed = allocs[:]
        rng.shuffle(mixed)
        again = _reconcile(job, mixed, nodes)
        assert [(n.id, r.task_group.name) for n, r in again.place] == [(n.id, r.task_group.name) for n, r in first.place]
        assert [s.alloc.id for s in again.stop] == [s.alloc.id for s in first.stop]
        assert again.desired_tg_updates == first.desired_tg_updates
        assert list(again.desired_tg_updates) == list(first.desired_tg_updates)
