"""`usage.JobCounts`: a node's allocs per job and group, shared between the versions of the
node's cached usage. A new version must never change an older one (scheduler threads read
older versions while the plan applier makes newer ones)."""

from __future__ import annotations

import copy
from random import Random

from yurt.scheduler.usage import JobCounts, JobEdit, NodeBase
from yurt.structs import evolve
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _alloc(job_id: str, group: str = "web", namespace: str = "default"):
    return evolve(mock_alloc(mock_job(id=job_id)), job_id=job_id, task_group=group, namespace=namespace)


def _plain(counts: JobCounts) -> dict:
    return {key: dict(groups) for key, groups in counts.items()}


def test_added_leaves_the_version_it_came_from_as_it_was():
    first = JobCounts.of({("default", "a"): {"web": 2}, ("default", "b"): {"web": 1, "db": 1}})
    second = first.added([_alloc("a")])
    third = second.added([_alloc("c", "db"), _alloc("a"), _alloc("a", "api")])
    assert _plain(first) == {("default", "a"): {"web": 2}, ("default", "b"): {"web": 1, "db": 1}}
    assert second.get(("default", "a")) == {"web": 3}
    assert third.get(("default", "a")) == {"web": 4, "api": 1}
    assert third.get(("default", "c")) == {"db": 1}
    assert third.get(("other", "c")) is None and second.get(("default", "c")) is None
    assert third.get(("default", "b")) is first.get(("default", "b"))  # untouched: shared
    assert len(third) == 3 and len(first) == 2


def test_an_edit_counts_out_and_drops_jobs_left_without_allocs():
    first = JobCounts.of({("default", "a"): {"web": 1}, ("default", "b"): {"web": 2}})
    edit = JobEdit(first)
    edit.add(_alloc("a"), -1)
    edit.add(_alloc("b"), -1)
    edit.add(_alloc("b", "db"), 1)
    second = edit.done()
    assert _plain(second) == {("default", "b"): {"web": 1, "db": 1}}
    assert _plain(first) == {("default", "a"): {"web": 1}, ("default", "b"): {"web": 2}}
    assert second == {("default", "b"): {"web": 1, "db": 1}} and second != first


def test_random_versions_each_equal_their_own_reference():
    rng = Random(9)
    jobs = [("default", f"job-{i}") for i in range(60)] + [("prod", "job-1")]
    versions = [(JobCounts(), {})]
    for _ in range(400):
        counts, reference = versions[-1]
        reference = copy.deepcopy(reference)
        allocs, signs = [], []
        for _ in range(rng.choice((1, 1, 1, 3))):
            namespace, job_id = rng.choice(jobs)
            group = rng.choice(("web", "db"))
            held = reference.get((namespace, job_id), {}).get(group, 0)
            sign = -1 if held and rng.random() < 0.4 else 1
            allocs.append(_alloc(job_id, group, namespace))
            signs.append(sign)
            groups = reference.setdefault((namespace, job_id), {})
            groups[group] = groups.get(group, 0) + sign
            if not groups[group]:
                del groups[group]
            if not groups:
                del reference[(namespace, job_id)]
        if all(s == 1 for s in signs) and rng.random() < 0.5:
            new = counts.added(allocs)
        else:
            edit = JobEdit(counts)
            for alloc, sign in zip(allocs, signs):
                edit.add(alloc, sign)
            new = edit.done()
        versions.append((new, reference))
    for counts, reference in versions:  # every version still says what it said when made
        assert _plain(counts) == reference
        for key in jobs:
            assert counts.get(key) == reference.get(key)


def test_a_recount_holds_the_same_counts_as_a_plain_dict():
    node = mock_node()
    allocs = [evolve(_alloc(f"job-{i % 7}", ("web", "db")[i % 2]), id=f"a-{i}", node_id=node.id) for i in range(30)]
    allocs.append(evolve(_alloc("job-9"), id="stopped", node_id=node.id, desired_status="stop"))
    base = NodeBase(node, allocs, ())
    expected: dict = {}
    for alloc in allocs[:-1]:
        groups = expected.setdefault((alloc.namespace, alloc.job_id), {})
        groups[alloc.task_group] = groups.get(alloc.task_group, 0) + 1
    assert base.jobs == expected
    assert base.jobs.get(("default", "job-9")) is None
