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


# --- distinct_hosts / distinct_property ------------------------------------------------------
constraint_specs = st.lists(
    st.tuples(
        st.integers(1, 10),  # count
        st.sampled_from(["hosts", "property", "property-limit"]),
        st.integers(1, 3),  # distinct_property limit
        st.booleans(),  # job level (else group level)
    ),
    min_size=1, max_size=3,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(racks=st.lists(st.sampled_from(["r1", "r2", "r3"]), min_size=1, max_size=8), jobs=constraint_specs,
       rescale=st.lists(st.integers(0, 10), max_size=3))
def test_distinct_hosts_and_distinct_property_are_never_violated(racks, jobs, rescale):
    from yurt.structs import Constraint

    h = Harness()
    for rack in racks:
        h.add_node(mock_node(meta={"rack": rack}))
    stored = []
    for i, (count, kind, limit, job_level) in enumerate(jobs):
        if kind == "hosts":
            c = Constraint(operand="distinct_hosts", r_target="true")
        else:
            c = Constraint(l_target="${meta.rack}", operand="distinct_property",
                           r_target=str(limit) if kind == "property-limit" else "")
        job = _job(i, count, 100, 64, None, "service")
        if job_level:
            job = evolve(job, constraints=[*(job.constraints or ()), c])
        else:
            job = evolve(job, task_groups=[evolve(job.task_groups[0], constraints=[c])])
        job = h.state.upsert_job(job)
        stored.append((job, kind, limit))
        h.process(h.new_eval(job))
    for i, count in enumerate(rescale[: len(stored)]):
        job, kind, limit = stored[i]
        job = h.state.upsert_job(evolve(job, task_groups=[evolve(job.task_groups[0], count=count)]))
        stored[i] = (job, kind, limit)
        h.process(h.new_eval(job))
    for job, kind, limit in stored:
        live = [a for a in h.state.allocs_by_job(job.namespace, job.id) if not a.terminal]
        if kind == "hosts":
            nodes = [a.node_id for a in live]
            assert len(nodes) == len(set(nodes))
        else:
            allowed = limit if kind == "property-limit" else 1
            per_rack: dict[str, int] = {}
            for a in live:
                rack = h.state.node_by_id(a.node_id).meta["rack"]
                per_rack[rack] = per_rack.get(rack, 0) + 1
            assert all(n <= allowed for n in per_rack.values()), per_rack


# --- determinism --------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=node_specs, job=job_specs.map(lambda js: js[0]), algorithm=st.sampled_from(["binpack", "spread"]))
def test_same_eval_id_gives_the_same_plan(nodes, job, algorithm):
    from yurt.structs import Evaluation, SchedulerConfiguration

    def plan_once():
        h = Harness()
        h.state.set_scheduler_config(SchedulerConfiguration(scheduler_algorithm=algorithm))
        for n, spec in enumerate(nodes):
            h.add_node(evolve(_node(*spec), id=f"00000000-0000-0000-0000-{n:012d}", name=f"n{n}"))
        stored = h.state.upsert_job(_job(0, *job))
        ev = Evaluation(id="6a1c0f2e-5b7d-4c3a-9e8f-0123456789ab", namespace=stored.namespace,
                        priority=stored.priority, type=stored.type, triggered_by="job-register",
                        job_id=stored.id, status="pending")
        h.process(ev)
        return sorted(
            (a.name, a.node_id, str(a.allocated_resources.shared.networks))
            for p in h.plans for allocs in p.node_allocation.values() for a in allocs
        )

    assert plan_once() == plan_once()


# --- the plan applier ---------------------------------------------------------------------------
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=node_specs, job=job_specs.map(lambda js: js[0]),
       intruders=st.lists(st.tuples(st.integers(0, 7), st.integers(50, 4000), st.integers(64, 8000),
                                    st.sampled_from([None, 8080])), max_size=6))
def test_plan_applier_never_commits_a_plan_that_no_longer_fits(nodes, job, intruders):
    """A plan made on an old snapshot meets allocs another writer added meanwhile: every
    node the applier commits still fits, and it rejects only nodes that do not."""
    from yurt.server.plan_apply import _proposed_allocs, evaluate_plan
    from yurt.structs import PlanResult
    from yurt.testing.mock import mock_alloc

    class DryRun(Harness):
        def submit_plan(self, plan):
            self.plans.append(plan)
            return PlanResult(node_allocation=plan.node_allocation, node_update=plan.node_update), None

    h = DryRun()
    for spec in nodes:
        h.add_node(_node(*spec))
    h.process(h.new_eval(h.state.upsert_job(_job(0, *job))))
    if not h.plans:
        return
    plan = h.plans[-1]
    all_nodes = h.state.nodes()
    for i, (which, cpu, mem, port) in enumerate(intruders):
        other = h.state.upsert_job(_job(100 + i, 1, cpu, mem, port, "service"))
        h.add_alloc(mock_alloc(other, all_nodes[which % len(all_nodes)], index=i))
    result, _ = evaluate_plan(h.state, plan)
    for node_id in result.node_allocation:
        node = h.state.node_by_id(node_id)
        assert allocs_fit(node, _proposed_allocs(h.state, plan, node_id))[0]
    for node_id in result.rejected_nodes or ():
        node = h.state.node_by_id(node_id)
        assert not allocs_fit(node, _proposed_allocs(h.state, plan, node_id))[0]


# --- preemption -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=node_specs, jobs=job_specs, priorities=st.lists(st.integers(1, 100), min_size=4, max_size=4),
       enabled=st.booleans())
def test_preemption_never_overcommits_or_evicts_near_priorities(nodes, jobs, priorities, enabled):
    from yurt.structs import PreemptionConfig, SchedulerConfiguration

    h = Harness()
    h.state.set_scheduler_config(SchedulerConfiguration(preemption_config=PreemptionConfig(
        service_scheduler_enabled=enabled, batch_scheduler_enabled=enabled)))
    for spec in nodes:
        h.add_node(_node(*spec))
    for i, spec in enumerate(jobs):
        job = h.state.upsert_job(evolve(_job(i, *spec), priority=priorities[i]))
        h.process(h.new_eval(job))
    for node in h.state.nodes():
        live = [a for a in h.state.allocs_by_node(node.id) if not a.terminal]
        assert allocs_fit(node, live) == (True, ""), [a.name for a in live]
    evicted = [a for a in h.state.allocs() if a.desired_status == "evict"]
    if not enabled:
        assert not evicted
    for victim in evicted:
        winner = h.state.alloc_by_id(victim.preempted_by_allocation)
        assert winner is not None and victim.id in winner.preempted_allocations
        assert winner.job.priority - victim.job.priority >= 10
        assert winner.node_id == victim.node_id


# --- devices ---------------------------------------------------------------------------------
device_node_specs = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.booleans()), min_size=1, max_size=5)
device_job_specs = st.lists(
    st.tuples(st.integers(1, 6), st.integers(1, 3), st.sampled_from(["gpu", "nvidia/gpu", "nvidia/gpu/big"]),
              st.integers(1, 100)),
    min_size=1, max_size=4,
)


def _device_node(big: int, small: int, one_unhealthy: bool):
    from yurt.structs.node import NodeDevice, NodeDeviceResource

    groups = [NodeDeviceResource(vendor="nvidia", type="gpu", name=name,
                                 instances=[NodeDevice(id=f"{name}-{i}", healthy=not (one_unhealthy and i == 0))
                                            for i in range(n)])
              for name, n in (("big", big), ("small", small)) if n]
    node = mock_node()
    return evolve(node, node_resources=evolve(node.node_resources, devices=groups or None))


def _device_job(i: int, count: int, gpus: int, name: str, priority: int):
    from yurt.structs.job import RequestedDevice

    job = mock_job(id=f"dev-{i}", priority=priority)
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], resources=evolve(tg.tasks[0].resources, cpu=50, memory_mb=32,
                                                devices=[RequestedDevice(name=name, count=gpus)]))
    return evolve(job, task_groups=[evolve(tg, count=count, tasks=[task], networks=None)])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=device_node_specs, jobs=device_job_specs, preempt=st.booleans(),
       rescale=st.lists(st.integers(0, 6), max_size=4))
def test_devices_are_never_over_assigned(nodes, jobs, preempt, rescale):
    from yurt.structs import PreemptionConfig, SchedulerConfiguration

    h = Harness()
    h.verify_fit = False  # the scheduler alone must never hand out an instance twice
    if preempt:
        h.state.set_scheduler_config(SchedulerConfiguration(
            preemption_config=PreemptionConfig(service_scheduler_enabled=True)))
    for spec in nodes:
        h.add_node(_device_node(*spec))
    stored = []
    for i, spec in enumerate(jobs):
        job = h.state.upsert_job(_device_job(i, *spec))
        stored.append(job)
        h.process(h.new_eval(job))
    for i, count in enumerate(rescale[: len(stored)]):
        job = h.state.upsert_job(evolve(stored[i], task_groups=[evolve(stored[i].task_groups[0], count=count)]))
        h.process(h.new_eval(job))
    for node in h.state.nodes():
        healthy = {(d.name, inst.id) for d in node.node_resources.devices or () for inst in d.instances if inst.healthy}
        live = [a for a in h.state.allocs_by_node(node.id) if not a.terminal]
        held = []
        for alloc in live:
            job = h.state.job_by_id(alloc.namespace, alloc.job_id)
            ask = job.task_groups[0].tasks[0].resources.devices[0]
            devs = alloc.allocated_resources.tasks["web"].devices or []
            assert sum(len(d["DeviceIDs"]) for d in devs) == ask.count
            held += [(d["Name"], i) for d in devs for i in d["DeviceIDs"]]
        assert len(held) == len(set(held)), held
        assert set(held) <= healthy
        assert allocs_fit(node, live) == (True, "")
