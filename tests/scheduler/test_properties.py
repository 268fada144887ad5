"""Property: whatever the cluster and jobs, the scheduler never over-commits a node,
never runs two allocs with the same name, and never runs more than count."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yurt.structs import NetworkResource, Port, evolve
from yurt.structs.node import NodeCpuResources, NodeMemoryResources
from yurt.structs.resources import allocs_fit
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_job, mock_node

node_specs = st.lists(
    st.tuples(st.integers(500, 8000), st.integers(512, 16384), st.sampled_from(["dc1", "dc2"])),
    min_size=1, max_size=8,
)
job_specs = st.lists(
    st.tuples(
        st.integers(1, 12),  # count
        st.integers(50, 3000),  # cpu
        st.integers(64, 6000),  # memory
        st.sampled_from([None, 8080, 9090]),  # static port
        st.sampled_from(["service", "batch"]),
    ),
    min_size=1, max_size=4,
)


def _node(cpu: int, mem: int, dc: str):
    node = mock_node(datacenter=dc)
    res = evolve(node.node_resources, cpu=NodeCpuResources(cpu_shares=cpu, total_cpu_cores=4,
                                                          reservable_cpu_cores=[0, 1, 2, 3]),
                 memory=NodeMemoryResources(memory_mb=mem))
    return evolve(node, node_resources=res)


def _job(i: int, count: int, cpu: int, mem: int, port: int | None, typ: str):
    job = mock_job(id=f"job-{i}", type=typ, datacenters=["dc1", "dc2"])
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], resources=evolve(tg.tasks[0].resources, cpu=cpu, memory_mb=mem))
    nets = [NetworkResource(mode="host", dynamic_ports=[Port(label="http")],
                            reserved_ports=[Port(label="admin", value=port)] if port else None)]
    return evolve(job, task_groups=[evolve(tg, count=count, tasks=[task], networks=nets)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=node_specs, jobs=job_specs, rescale=st.lists(st.integers(0, 12), max_size=4))
def test_no_node_is_overcommitted(nodes, jobs, rescale):
    h = Harness()
    h.verify_fit = False  # the scheduler alone must keep nodes within capacity
    for spec in nodes:
        h.add_node(_node(*spec))
    stored = []
    for i, spec in enumerate(jobs):
        job = h.state.upsert_job(_job(i, *spec))
        stored.append(job)
        h.process(h.new_eval(job))
    for i, count in enumerate(rescale[: len(stored)]):
        job = stored[i]
        job = h.state.upsert_job(evolve(job, task_groups=[evolve(job.task_groups[0], count=count)]))
        h.process(h.new_eval(job))
    for node in h.state.nodes():
        live = [a for a in h.state.allocs_by_node(node.id) if not a.terminal]
        assert allocs_fit(node, live) == (True, ""), [a.name for a in live]
    for job in h.state.jobs():
        live = [a for a in h.state.allocs_by_job(job.namespace, job.id) if not a.terminal]
        names = [a.name for a in live]
        assert len(names) == len(set(names))
        assert len(live) <= job.task_groups[0].count
