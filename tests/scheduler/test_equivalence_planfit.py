"""The plan applier's incremental fit check answers exactly as the full `allocs_fit`
over the node's proposed allocs, on random nodes, existing allocs and plans."""

from __future__ import annotations

from random import Random

import pytest

from yurt.server.plan_apply import _proposed_allocs, plan_fits_node
from yurt.structs import NetworkResource, Plan, Port, evolve, generate_uuid
from yurt.structs.resources import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    allocs_fit,
)
from yurt.testing.harness import InMemoryState
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _alloc(rng: Random, job, node):
    ports = [Port(label=f"p{i}", value=rng.choice((22, 8080, 8081, 20000, 20001, 20002, 25000 + i)))
             for i in range(rng.choice((0, 0, 1, 2)))]
    cores = sorted(rng.sample(range(5), rng.choice((0, 0, 0, 1, 2)))) or None
    shared = AllocatedSharedResources(
        disk_mb=rng.choice((0, 150, 30000)),
        networks=[NetworkResource(mode="host", ip="10.0.0.1", dynamic_ports=ports)] if ports else None)
    task = AllocatedTaskResources(cpu=AllocatedCpuResources(cpu_shares=rng.choice((100, 500, 1500)), reserved_cores=cores),
                                  memory=AllocatedMemoryResources(memory_mb=rng.choice((128, 1024, 3000))))
    alloc = mock_alloc(job, node, id=generate_uuid())
    status = rng.choice(("pending", "running", "running", "complete", "failed"))
    return evolve(alloc, allocated_resources=AllocatedResources(tasks={"web": task}, shared=shared),
                  client_status=status, desired_status=rng.choice(("run", "run", "run", "stop")))


class _Versioned:
    """The harness state with a per-node alloc index, as the real state store has."""

    def __init__(self, state, version: int) -> None:
        self._state = state
        self._version = version

    def node_allocs_index(self, node_id: str) -> int:
        return self._version

    def __getattr__(self, name):
        return getattr(self._state, name)


@pytest.mark.parametrize("versioned,cached", [(False, False), (True, False), (True, True)])
def test_incremental_fit_matches_full_fit(versioned, cached):
    """`cached`: with the applier's per-plan cache of what allocated resources hold, shared
    by several allocs of the plan and of the node, and its record of the new usage."""
    rng = Random(7 + versioned + 2 * cached)
    job = mock_job()
    disagreements = []
    fits_seen = set()
    shared = [_alloc(rng, job, None).allocated_resources for _ in range(6)]
    for round_ in range(400):
        state = InMemoryState()
        node = state.upsert_node(mock_node())
        existing = [state.upsert_alloc(_alloc(rng, job, node)) for _ in range(rng.randint(0, 8))]
        plan = Plan(eval_id=generate_uuid(), priority=50)
        for alloc in existing:
            r = rng.random()
            if r < 0.2:
                plan.node_update.setdefault(node.id, []).append(alloc)
            elif r < 0.3:
                plan.node_preemptions.setdefault(node.id, []).append(alloc)
            elif r < 0.4:  # an in-place update keeps the alloc's id
                plan.node_allocation.setdefault(node.id, []).append(evolve(alloc, client_status="running"))
        for _ in range(rng.randint(1, 4)):
            alloc = _alloc(rng, job, node)
            if cached and rng.random() < 0.5:  # allocs of one plan sharing their resources object
                alloc = evolve(alloc, allocated_resources=rng.choice(shared))
            plan.node_allocation.setdefault(node.id, []).append(alloc)
        snap = state.snapshot()
        if versioned:
            snap = _Versioned(snap, round_)
        want = allocs_fit(node, _proposed_allocs(snap, plan, node.id))[0]
        if cached:
            got = plan_fits_node(snap, plan, node, {})[0]
        else:
            got = plan_fits_node(snap, plan, node)[0]
        fits_seen.add(want)
        if got != want:
            disagreements.append(round_)
    assert not disagreements
    assert fits_seen == {True, False}
