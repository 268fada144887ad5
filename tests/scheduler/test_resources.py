"""allocs_fit and the fit scores (yurt.structs.resources)."""

import math

from yurt.structs import evolve
from yurt.structs.alloc import AllocatedCpuResources
from yurt.structs.node import NodeReservedNetworkResources
from yurt.structs.resources import (
    ComparableResources,
    allocs_fit,
    node_capacity,
    parse_port_ranges,
    score_fit_binpack,
    score_fit_spread,
)
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def test_capacity_subtracts_reserved():
    cap = node_capacity(mock_node())
    assert (cap.cpu_shares, cap.memory_mb, cap.disk_mb) == (3900, 7936, 100 * 1024 - 4096)


def test_allocs_fit_counts_cpu_and_ignores_terminal():
    node = mock_node()
    job = mock_job()
    allocs = [mock_alloc(job, node, index=i) for i in range(7)]  # 7 x 500 = 3500 <= 3900
    assert allocs_fit(node, allocs) == (True, "")
    allocs.append(mock_alloc(job, node, index=7))  # 4000 > 3900
    assert allocs_fit(node, allocs) == (False, "cpu")
    allocs[-1] = evolve(allocs[-1], desired_status="stop")
    assert allocs_fit(node, allocs) == (True, "")
    allocs[-1] = evolve(allocs[-1], desired_status="run", client_status="complete")
    assert allocs_fit(node, allocs) == (True, "")


def test_allocs_fit_memory_dimension():
    node = mock_node()
    job = mock_job()
    big = job.task_groups[0]
    tasks = [evolve(big.tasks[0], resources=evolve(big.tasks[0].resources, cpu=10, memory_mb=5000))]
    job = evolve(job, task_groups=[evolve(big, tasks=tasks)])
    allocs = [mock_alloc(job, node, index=0), mock_alloc(job, node, index=1)]
    assert allocs_fit(node, allocs) == (False, "memory")


def test_port_collision_and_reserved_port():
    node = mock_node()
    job = mock_job()
    a = mock_alloc(job, node, index=0)
    b = mock_alloc(job, node, index=0)  # same index -> same port value
    assert allocs_fit(node, [a, b]) == (False, "network: port collision")
    node22 = evolve(node, reserved_resources=evolve(
        node.reserved_resources, networks=NodeReservedNetworkResources(reserved_host_ports="20000-20005")))
    assert allocs_fit(node22, [a]) == (False, "network: reserved port collision")


def test_reserved_cores_overlap():
    node = mock_node()
    job = mock_job()
    allocs = []
    for i in range(2):
        a = mock_alloc(job, node, index=i)
        tr = a.allocated_resources.tasks["web"]
        tasks = {"web": evolve(tr, cpu=AllocatedCpuResources(cpu_shares=0, reserved_cores=[1]))}
        allocs.append(evolve(a, allocated_resources=evolve(a.allocated_resources, tasks=tasks)))
    assert allocs_fit(node, allocs[:1]) == (True, "")
    assert allocs_fit(node, allocs) == (False, "cores")


def test_parse_port_ranges():
    assert parse_port_ranges("22, 80,8000-8002") == {22, 80, 8000, 8001, 8002}
    assert parse_port_ranges("") == set()


def test_binpack_formula():
    node = mock_node()
    empty = score_fit_binpack(node, ComparableResources())
    assert empty == 0.0  # 20 - (10 + 10)
    half = score_fit_binpack(node, ComparableResources(cpu_shares=1950, memory_mb=3968))
    assert math.isclose(half, 20 - 2 * 10**0.5)
    full = score_fit_binpack(node, ComparableResources(cpu_shares=3900, memory_mb=7936))
    assert full == 18.0
    assert score_fit_spread(node, ComparableResources()) == 18.0
    assert math.isclose(score_fit_spread(node, ComparableResources(cpu_shares=1950, memory_mb=3968)), 2 * 10**0.5 - 2)
