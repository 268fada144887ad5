"""Feasibility scenarios: constraint operators on nodes, datacenters, pools, drivers,
distinct_hosts, distinct_property, ports, and the failure reasons people read."""

import pytest

from yurt.structs import Constraint, DriverInfo, NetworkResource, Port, evolve
from yurt.structs.node import NodeMemoryResources
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_node

from .helpers import placed, run_job, small_job, with_group_constraints, with_resources


DISTINCT = Constraint(operand="distinct_hosts", r_target="true")


def _nodes_with(h: Harness, attr: str, values: list[str]):
    out = {}
    for v in values:
        node = mock_node()
        out[v] = h.add_node(evolve(node, attributes={**node.attributes, attr: v}))
    return out


@pytest.mark.parametrize(
    "values,operand,rtarget,expected",
    [
        (["linux", "windows"], "=", "windows", {"windows"}),
        (["linux", "windows"], "!=", "linux", {"windows"}),
        (["2", "8", "16"], ">", "4", {"8", "16"}),
        (["2", "8", "16"], ">=", "8", {"8", "16"}),
        (["2", "8", "16"], "<", "8", {"2"}),
        (["2", "8", "16"], "<=", "8", {"2", "8"}),
        (["1.2.0", "1.10.1", "2.0.0"], "version", ">= 1.5, < 2.0", {"1.10.1"}),
        (["1.2.0", "1.3.0-beta1", "2.0.0"], "semver", ">= 1.2.0", {"1.2.0", "2.0.0"}),
        (["ubuntu-22", "debian-12", "ubuntu-20"], "regexp", "^ubuntu-2[2-9]", {"ubuntu-22"}),
        (["a,b,c", "a,c", "b"], "set_contains", "a,c", {"a,b,c", "a,c"}),
        (["a,b,c", "a,c", "b"], "set_contains_all", "b,c", {"a,b,c"}),
        (["a,b,c", "a,c", "b"], "set_contains_any", "b,x", {"a,b,c", "b"}),
    ],
)
def test_constraint_operator_selects_matching_nodes(values, operand, rtarget, expected):
    h = Harness()
    nodes = _nodes_with(h, "custom.value", values)
    constraint = Constraint(l_target="${attr.custom.value}", r_target=rtarget, operand=operand)
    job = with_group_constraints(small_job(len(expected) + 1), constraint, DISTINCT)
    run_job(h, job)
    chosen = {a.node_id for a in placed(h)}
    assert chosen == {nodes[v].id for v in expected}
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    key = f"${{attr.custom.value}} {operand} {rtarget}"
    assert metric.constraint_filtered == {key: len(values) - len(expected), "distinct_hosts": len(expected)}


@pytest.mark.parametrize("operand,expect_with", [("is_set", True), ("is_not_set", False)])
def test_is_set_operators(operand, expect_with):
    h = Harness()
    node = mock_node()
    with_attr = h.add_node(evolve(node, attributes={**node.attributes, "gpu.model": "a100"}))
    without = h.add_node(mock_node())
    run_job(h, with_group_constraints(small_job(1), Constraint(l_target="${attr.gpu.model}", operand=operand)))
    assert placed(h)[0].node_id == (with_attr.id if expect_with else without.id)


def test_node_field_targets():
    h = Harness()
    h.add_node(mock_node(node_class="small"))
    target = h.add_node(mock_node(node_class="large", name="big-one"))
    job = with_group_constraints(small_job(1), Constraint(l_target="${node.class}", r_target="large"),
                                 Constraint(l_target="${node.unique.name}", r_target="big-one"))
    run_job(h, job)
    assert placed(h)[0].node_id == target.id


def test_datacenters_and_globs():
    h = Harness()
    h.add_node(mock_node(datacenter="dc1"))
    east = h.add_node(mock_node(datacenter="us-east-1"))
    run_job(h, small_job(1, datacenters=["us-*"]))
    assert placed(h)[0].node_id == east.id


def test_node_pool_filtering_and_all():
    h = Harness()
    gpu = h.add_node(mock_node(node_pool="gpu"))
    h.add_node(mock_node(node_pool="default"))
    run_job(h, small_job(1, id="gpu-job", node_pool="gpu"))
    assert placed(h)[0].node_id == gpu.id
    run_job(h, small_job(2, id="any", node_pool="all"))
    assert len(placed(h)) == 2


def test_missing_driver_filters_node():
    h = Harness()
    node = mock_node()
    drivers = dict(node.drivers)
    drivers["exec"] = DriverInfo(detected=True, healthy=False)
    h.add_node(evolve(node, drivers=drivers))
    good = h.add_node(mock_node())
    run_job(h, with_group_constraints(small_job(2), DISTINCT))
    allocs = placed(h)
    assert {a.node_id for a in allocs} == {good.id}
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.constraint_filtered == {"missing drivers": 1, "distinct_hosts": 1}
    assert "1 missing driver exec" in metric.failure_reasons[0]


def test_driver_from_attribute_when_no_driver_info():
    h = Harness()
    node = mock_node(drivers=None)
    h.add_node(node)
    run_job(h, small_job(1))
    assert len(placed(h)) == 1


def test_distinct_hosts_limits_one_per_node():
    h = Harness()
    for _ in range(2):
        h.add_node(mock_node())
    job = small_job(3, constraints=[Constraint(operand="distinct_hosts", r_target="true")])
    run_job(h, job)
    assert len({a.node_id for a in placed(h)}) == 2 == len(placed(h))
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.constraint_filtered == {"distinct_hosts": 2}
    assert "2 already run this job (distinct_hosts)" in metric.failure_reasons[0]


def test_distinct_hosts_false_is_no_constraint():
    """`distinct_hosts = false` (RTarget "false", as jobspec2 decodes it) places freely."""
    h = Harness()
    for _ in range(2):
        h.add_node(mock_node())
    job = small_job(3, constraints=[Constraint(operand="distinct_hosts", r_target="false")])
    run_job(h, job)
    assert len(placed(h)) == 3
    assert not h.updated_evals[-1].failed_tg_allocs


def test_distinct_property_per_rack():
    h = Harness()
    for rack in ("r1", "r1", "r2", "r2"):
        h.add_node(mock_node(meta={"rack": rack}))
    job = with_group_constraints(small_job(3), Constraint(l_target="${meta.rack}", operand="distinct_property"))
    run_job(h, job)
    racks = sorted(h.state.node_by_id(a.node_id).meta["rack"] for a in placed(h))
    assert racks == ["r1", "r2"]
    assert h.updated_evals[-1].queued_allocations == {"web": 1}


def test_distinct_property_with_limit_counts_existing_allocs():
    h = Harness()
    for rack in ("r1", "r2"):
        h.add_node(mock_node(meta={"rack": rack}))
    constraint = Constraint(l_target="${meta.rack}", operand="distinct_property", r_target="2")
    job, _ = run_job(h, with_group_constraints(small_job(3), constraint))
    assert len(placed(h)) == 3
    run_job(h, with_group_constraints(small_job(5, id=job.id), constraint))
    assert len(h.job_allocs(job)) == 4


def test_static_port_collision_exhausts_node():
    h = Harness()
    h.add_node(mock_node())
    job = small_job(2)
    tg = job.task_groups[0]
    net = NetworkResource(mode="host", reserved_ports=[Port(label="http", value=8080)])
    job = evolve(job, task_groups=[evolve(tg, networks=[net])])
    run_job(h, job)
    (alloc,) = placed(h)
    assert alloc.allocated_resources.shared.ports[0].value == 8080
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"network: reserved port collision": 1}


def test_node_reserved_port_is_never_used():
    h = Harness()
    h.add_node(mock_node())
    job = small_job(1)
    tg = job.task_groups[0]
    net = NetworkResource(mode="host", reserved_ports=[Port(label="ssh", value=22)])
    run_job(h, evolve(job, task_groups=[evolve(tg, networks=[net])]))
    assert not placed(h) if h.plans else True
    assert h.updated_evals[-1].failed_tg_allocs["web"].nodes_exhausted == 1


def test_dynamic_ports_are_distinct_on_one_node_and_in_range():
    h = Harness()
    h.add_node(mock_node())
    run_job(h, small_job(5))
    ports = [a.allocated_resources.shared.ports[0].value for a in placed(h)]
    assert len(set(ports)) == 5
    assert all(20000 <= p <= 32000 for p in ports)


def test_failure_reasons_sentence():
    h = Harness()
    for _ in range(2):
        node = mock_node(datacenter="dc2")
        h.add_node(evolve(node, attributes={**node.attributes, "kernel.name": "windows"}))
    h.add_node(mock_node(datacenter="dc1"))
    for _ in range(2):
        node = mock_node(datacenter="dc2")
        h.add_node(evolve(node, node_resources=evolve(node.node_resources, memory=NodeMemoryResources(memory_mb=1280))))
    job = with_resources(small_job(3, datacenters=["dc2"]), cpu=100, memory_mb=2048)
    run_job(h, job)
    done = h.updated_evals[-1]
    metric = done.failed_tg_allocs["web"]
    assert metric.failure_reasons == [
        "5 nodes evaluated: 1 not in datacenter dc2, 2 filtered by constraint `${attr.kernel.name} = linux`, "
        "2 exhausted memory (needs 2048 MB, most free is 1024 MB)"
    ]
    assert metric.nodes_evaluated == 4 and metric.nodes_filtered == 2 and metric.nodes_exhausted == 2
    assert metric.dimension_exhausted == {"memory": 2}
    assert metric.nodes_available == {"dc2": 4}
    assert metric.coalesced_failures == 2
    assert done.queued_allocations == {"web": 3}


def test_no_nodes_sentence():
    h = Harness()
    run_job(h, small_job(1))
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.failure_reasons == ["no nodes were eligible for evaluation: no nodes are registered"]


def test_down_nodes_are_counted_in_failure_reasons():
    h = Harness()
    h.add_node(mock_node(status="down"))
    run_job(h, small_job(1))
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.failure_reasons == ["1 node evaluated: 1 not ready"]


def test_class_cache_is_used_for_identical_nodes(monkeypatch):
    from yurt.scheduler import feasible

    calls = []
    original = feasible.GroupChecker._check_class

    def counting(self, node):
        calls.append(node.id)
        return original(self, node)

    monkeypatch.setattr(feasible.GroupChecker, "_check_class", counting)
    h = Harness()
    for _ in range(10):
        h.add_node(mock_node())
    run_job(h, small_job(10))
    assert len(placed(h)) == 10
    assert len(calls) == 1  # one computed class, checked once


def test_affinity_prefers_matching_nodes_and_widens_the_limit():
    from yurt.structs import Affinity

    h = Harness()
    wanted = set()
    for i in range(12):
        node = h.add_node(mock_node(meta={"rack": "r2" if i % 4 == 0 else "r1"}))
        if i % 4 == 0:
            wanted.add(node.id)
    job = small_job(3)
    tg = job.task_groups[0]
    job = evolve(job, task_groups=[evolve(tg, affinities=[Affinity(l_target="${meta.rack}", r_target="r2", weight=100)])])
    run_job(h, job)
    allocs = placed(h)
    assert {a.node_id for a in allocs} == wanted
    assert allocs[0].metrics.nodes_evaluated == 12  # limit max(count, 100) covers every node
    top = allocs[0].metrics.score_meta_data[0]
    assert top.scores["node-affinity"] == 1.0


def test_even_spread_across_datacenters():
    from yurt.structs import Spread

    h = Harness()
    for dc in ("dc1", "dc1", "dc1", "dc1", "dc2", "dc2"):
        h.add_node(mock_node(datacenter=dc))
    job = small_job(4, datacenters=["dc1", "dc2"], spreads=[Spread(attribute="${node.datacenter}", weight=100)])
    run_job(h, job)
    dcs = sorted(h.state.node_by_id(a.node_id).datacenter for a in placed(h))
    assert dcs == ["dc1", "dc1", "dc2", "dc2"]


def test_spread_targets_follow_percentages():
    from yurt.structs import Spread, SpreadTarget

    h = Harness()
    for rack in ("r1", "r1", "r1", "r1", "r2", "r2", "r2", "r2"):
        h.add_node(mock_node(meta={"rack": rack}))
    spread = Spread(attribute="${meta.rack}", weight=100,
                    spread_target=[SpreadTarget(value="r1", percent=75), SpreadTarget(value="r2", percent=25)])
    job = small_job(4)
    job = evolve(job, task_groups=[evolve(job.task_groups[0], spreads=[spread])])
    run_job(h, job)
    racks = sorted(h.state.node_by_id(a.node_id).meta["rack"] for a in placed(h))
    assert racks == ["r1", "r1", "r1", "r2"]
    assert "allocation-spread" in placed(h)[0].metrics.score_meta_data[0].scores


def test_host_volume_must_exist_on_node():
    h = Harness()
    h.add_node(mock_node())
    with_volume = h.add_node(mock_node(host_volumes={"data": {"Path": "/srv/data", "ReadOnly": False}}))
    job = small_job(1)
    tg = job.task_groups[0]
    job = evolve(job, task_groups=[evolve(tg, volumes={"d": {"Type": "host", "Source": "data"}})])
    run_job(h, with_group_constraints(evolve(job, task_groups=[evolve(job.task_groups[0], count=2)]), DISTINCT))
    assert [a.node_id for a in placed(h)] == [with_volume.id]
    reasons = h.updated_evals[-1].failed_tg_allocs["web"].failure_reasons[0]
    assert "1 missing compatible host volumes" in reasons


def test_cores_fall_back_to_total_cores_when_reservable_list_missing():
    from yurt.structs.node import NodeCpuResources
    from yurt.structs.resources import node_capacity

    node = mock_node()
    node = evolve(node, node_resources=evolve(node.node_resources, cpu=NodeCpuResources(cpu_shares=4000, total_cpu_cores=2)))
    assert node_capacity(node).reserved_cores == {0, 1}


def test_class_metrics_are_keyed_by_node_class_when_set():
    """As Nomad's AllocMetric: ClassFiltered / ClassExhausted count by NodeClass, unclassed nodes not at all."""
    h = Harness()
    h.add_node(mock_node(node_class="fast"))
    h.add_node(mock_node(node_class=""))
    job = small_job(1, constraints=[Constraint(l_target="${attr.kernel.name}", r_target="windows")])
    run_job(h, job)
    metric = h.updated_evals[-1].failed_tg_allocs["web"]
    assert metric.class_filtered == {"fast": 1}
    assert metric.nodes_filtered == 2
