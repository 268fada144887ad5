"""Devices: feasibility, unit-aware constraints, affinities, instance assignment, exhaustion
reasons, the plan applier's re-check and preemption of device holders."""

from yurt.client.devices import device_env
from yurt.scheduler.devices import (
    compare_attributes,
    fit_devices,
    group_asks,
    name_matches,
    parse_attribute,
)
from yurt.structs import (
    Affinity,
    Constraint,
    PreemptionConfig,
    SchedulerConfiguration,
    evolve,
)
from yurt.structs.job import RequestedDevice
from yurt.structs.node import Attribute, NodeDevice, NodeDeviceResource
from yurt.structs.resources import allocs_fit
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_alloc, mock_node

from .helpers import placed, run_job, small_job, with_resources


def gpu_group(name: str = "Tesla T4", count: int = 2, memory: str = "16 GiB", vendor: str = "nvidia",
              prefix: str = "GPU", unhealthy: int = 0) -> NodeDeviceResource:
    return NodeDeviceResource(
        vendor=vendor, type="gpu", name=name,
        instances=[NodeDevice(id=f"{prefix}-{i}", healthy=i >= unhealthy) for i in range(count)],
        attributes={"memory": parse_attribute(memory)},
    )


def device_node(*groups: NodeDeviceResource, **fields):
    node = mock_node(**fields)
    return evolve(node, node_resources=evolve(node.node_resources, devices=list(groups) or None))


def gpu_job(count: int = 1, gpus: int = 1, name: str = "nvidia/gpu", constraints=None, affinities=None,
            tasks: int = 1, **fields):
    job = with_resources(small_job(count, **fields), cpu=100, memory_mb=64)
    tg = job.task_groups[0]
    req = RequestedDevice(name=name, count=gpus, constraints=constraints, affinities=affinities)
    base = tg.tasks[0]
    new_tasks = [evolve(base, name=f"t{i}" if tasks > 1 else base.name,
                        resources=evolve(base.resources, devices=[req])) for i in range(tasks)]
    return evolve(job, task_groups=[evolve(tg, tasks=new_tasks)])


def device_ids(alloc) -> list[str]:
    return [i for t in alloc.allocated_resources.tasks.values() for d in t.devices or () for i in d["DeviceIDs"]]


def failure(h: Harness) -> str:
    return h.updated_evals[-1].failed_tg_allocs["web"].failure_reasons[0]


# --- pure pieces -----------------------------------------------------------------------------

def test_parse_attribute_numbers_units_bools_strings():
    assert parse_attribute("16 GiB") == Attribute(int_val=16, unit="GiB")
    assert parse_attribute("1.5GHz") == Attribute(float_val=1.5, unit="GHz")
    assert parse_attribute("true") == Attribute(bool_val=True)
    assert parse_attribute(7) == Attribute(int_val=7)
    assert parse_attribute("Tesla T4") == Attribute(string_val="Tesla T4")
    assert parse_attribute("12 apples") == Attribute(string_val="12 apples")  # unknown unit


def test_unit_aware_comparison():
    gib16 = parse_attribute("16 GiB")
    assert compare_attributes(">=", gib16, parse_attribute("2 GiB"))
    assert compare_attributes(">", gib16, parse_attribute("16000 MiB"))
    assert compare_attributes("=", gib16, parse_attribute("16384 MiB"))
    assert not compare_attributes(">", parse_attribute("1 GiB"), parse_attribute("2 GB"))
    assert not compare_attributes(">=", gib16, parse_attribute("1 GHz"))  # bytes vs hertz never compare
    assert compare_attributes("regexp", parse_attribute("Tesla T4"), parse_attribute("^Tesla"))
    assert compare_attributes("is_set", gib16, None)
    assert not compare_attributes("is_set", None, None)


def test_request_name_forms():
    dev = gpu_group()
    assert name_matches("gpu", dev)
    assert name_matches("nvidia/gpu", dev)
    assert name_matches("nvidia/gpu/Tesla T4", dev)
    assert not name_matches("amd/gpu", dev)
    assert not name_matches("nvidia/gpu/A100", dev)
    assert not name_matches("fpga", dev)


def test_env_for_devices():
    env = device_env([{"Vendor": "nvidia", "Type": "gpu", "Name": "T4", "DeviceIDs": ["a", "b"]},
                           {"Vendor": "yurt", "Type": "fpga-x", "Name": "F", "DeviceIDs": ["f1"]}])
    assert env == {"YURT_DEVICE_GPU": "a,b", "NVIDIA_VISIBLE_DEVICES": "a,b", "YURT_DEVICE_FPGA_X": "f1"}


def test_fit_devices_respects_used_instances():
    node = device_node(gpu_group(count=3))
    asks = group_asks(gpu_job(gpus=2).task_groups[0])
    fit = fit_devices(node, asks, {("nvidia", "gpu", "Tesla T4"): {"GPU-0"}})
    assert fit.ok and fit.devices["web"][0]["DeviceIDs"] == ["GPU-1", "GPU-2"]
    fit = fit_devices(node, asks, {("nvidia", "gpu", "Tesla T4"): {"GPU-0", "GPU-2"}})
    assert not fit.ok and not fit.missing and (fit.need, fit.most_free) == (2, 1)


# --- scheduling ------------------------------------------------------------------------------

def test_count_two_gets_two_distinct_instances():
    h = Harness()
    node = h.add_node(device_node(gpu_group()))
    run_job(h, gpu_job(gpus=2))
    [alloc] = placed(h)
    assert alloc.node_id == node.id
    [dev] = alloc.allocated_resources.tasks["web"].devices
    assert dev == {"Vendor": "nvidia", "Type": "gpu", "Name": "Tesla T4", "DeviceIDs": ["GPU-0", "GPU-1"]}


def test_two_jobs_never_share_an_instance_and_third_is_exhausted():
    h = Harness()
    h.add_node(device_node(gpu_group()))
    run_job(h, gpu_job(id="a"))
    run_job(h, gpu_job(id="b"))
    ids = [i for a in h.state.allocs() for i in device_ids(a)]
    assert sorted(ids) == ["GPU-0", "GPU-1"]
    job_c, _ = run_job(h, gpu_job(id="c"))
    assert h.job_allocs(job_c) == []
    reason = failure(h)
    assert "1 exhausted devices: nvidia/gpu (needs 1, most free is 0)" in reason, reason


def test_count_many_allocs_one_instance_each():
    h = Harness()
    h.add_node(device_node(gpu_group(count=4)))
    run_job(h, gpu_job(count=3))
    ids = [i for a in placed(h) for i in device_ids(a)]
    assert len(ids) == 3 and len(set(ids)) == 3


def test_two_tasks_in_one_group_get_distinct_instances():
    h = Harness()
    h.add_node(device_node(gpu_group()))
    run_job(h, gpu_job(tasks=2))
    [alloc] = placed(h)
    assert sorted(device_ids(alloc)) == ["GPU-0", "GPU-1"]
    assert all(len(t.devices) == 1 for t in alloc.allocated_resources.tasks.values())


def test_node_without_devices_is_filtered_with_reason():
    h = Harness()
    h.add_node(mock_node())
    gpu = h.add_node(device_node(gpu_group(count=1)))
    run_job(h, gpu_job())
    assert [a.node_id for a in placed(h)] == [gpu.id]
    h2 = Harness()
    h2.add_node(mock_node())
    run_job(h2, gpu_job())
    assert "1 missing devices" in failure(h2)
    assert h2.updated_evals[-1].failed_tg_allocs["web"].constraint_filtered == {"missing devices": 1}


def test_unhealthy_instances_do_not_count():
    h = Harness()
    h.add_node(device_node(gpu_group(count=2, unhealthy=1)))
    run_job(h, gpu_job(gpus=2))
    assert "missing devices" in failure(h)
    run_job(h, gpu_job(id="one"))
    assert device_ids(placed(h)[0]) == ["GPU-1"]


def test_constraint_on_memory_attribute_is_unit_aware():
    h = Harness()
    h.add_node(device_node(gpu_group(name="small", memory="8 GiB", prefix="S")))
    big = h.add_node(device_node(gpu_group(name="big", memory="24576 MiB", prefix="B")))
    c = Constraint(l_target="${device.attr.memory}", r_target="12 GiB", operand=">=")
    run_job(h, gpu_job(count=2, constraints=[c]))
    allocs = placed(h)
    assert {a.node_id for a in allocs} == {big.id}
    assert sorted(i for a in allocs for i in device_ids(a)) == ["B-0", "B-1"]


def test_model_form_selects_group_on_a_node_with_two_groups():
    h = Harness()
    h.add_node(device_node(gpu_group(name="Tesla T4", prefix="T"), gpu_group(name="A100", prefix="A")))
    run_job(h, gpu_job(name="nvidia/gpu/A100"))
    [alloc] = placed(h)
    assert alloc.allocated_resources.tasks["web"].devices[0]["Name"] == "A100"
    assert device_ids(alloc) == ["A-0"]


def test_device_affinity_prefers_group_and_node_and_scores_devices():
    h = Harness()
    h.add_node(device_node(gpu_group(name="Tesla T4", prefix="T")))
    a100 = h.add_node(device_node(gpu_group(name="A100", prefix="A")))
    aff = Affinity(l_target="${device.model}", r_target="A100", operand="=", weight=100)
    run_job(h, gpu_job(affinities=[aff]))
    [alloc] = placed(h)
    assert alloc.node_id == a100.id
    meta = {m.node_id: m.scores for m in alloc.metrics.score_meta_data}
    assert meta[a100.id]["devices"] == 1.0
    # on one node with both groups the affinity picks the group
    h2 = Harness()
    h2.add_node(device_node(gpu_group(name="Tesla T4", prefix="T"), gpu_group(name="A100", prefix="A")))
    run_job(h2, gpu_job(affinities=[aff]))
    assert device_ids(placed(h2)[0]) == ["A-0"]


def test_stopped_alloc_frees_its_instances():
    h = Harness()
    h.add_node(device_node(gpu_group(count=1)))
    job, _ = run_job(h, gpu_job(id="first"))
    [first] = h.job_allocs(job)
    h.state.upsert_alloc(evolve(first, client_status="complete"))
    run_job(h, gpu_job(id="second"))
    assert device_ids(placed(h)[0]) == ["GPU-0"]


def test_allocs_fit_rejects_double_assignment():
    node = device_node(gpu_group())
    job = gpu_job()
    job = evolve(job, task_groups=[evolve(job.task_groups[0], networks=None)])
    a, b = (mock_alloc(job, node, index=i) for i in range(2))
    dev = [{"Vendor": "nvidia", "Type": "gpu", "Name": "Tesla T4", "DeviceIDs": ["GPU-0"]}]
    a = evolve(a, allocated_resources=evolve(a.allocated_resources, tasks={
        "web": evolve(a.allocated_resources.tasks["web"], devices=dev)}))
    b = evolve(b, allocated_resources=a.allocated_resources)
    assert allocs_fit(node, [a]) == (True, "")
    assert allocs_fit(node, [a, b]) == (False, "device oversubscribed")


def test_plan_applier_rejects_stale_device_plan():
    """Two evaluations built against the same state both pick GPU-0; the applier commits one."""
    h = Harness()
    h.add_node(device_node(gpu_group(count=1)))
    snap_job = h.state.upsert_job(gpu_job(id="x"))
    ev = h.new_eval(snap_job)
    h.process(ev)
    assert len(h.state.allocs()) == 1
    # a plan holding the same instance for another job is rejected by the applier's check
    other = h.state.upsert_job(gpu_job(id="y"))
    stale = evolve(h.state.allocs()[0], id="00000000-0000-4000-8000-000000000000", job_id="y", job=other)
    from yurt.structs import Plan
    plan = Plan(eval_id="e", job=other)
    plan.append_alloc(stale)
    result, _ = h.submit_plan(plan)
    assert result.rejected_nodes == [stale.node_id]


def _holder(h: Harness, node, priority: int, job_id: str, ids: list[str]):
    job = h.state.upsert_job(gpu_job(id=job_id, priority=priority))
    alloc = mock_alloc(job, node)
    dev = [{"Vendor": "nvidia", "Type": "gpu", "Name": "Tesla T4", "DeviceIDs": ids}]
    ar = alloc.allocated_resources
    alloc = evolve(alloc, client_status="running", allocated_resources=evolve(
        ar, tasks={"web": evolve(ar.tasks["web"], devices=dev)}))
    return h.add_alloc(alloc)


def test_preemption_evicts_the_device_holder_only():
    h = Harness()
    h.state.set_scheduler_config(SchedulerConfiguration(
        preemption_config=PreemptionConfig(service_scheduler_enabled=True)))
    node = h.add_node(device_node(gpu_group(count=1)))
    holder = _holder(h, node, 20, "low-gpu", ["GPU-0"])
    bystander_job = h.state.upsert_job(with_resources(small_job(1, id="low-cpu", priority=10), cpu=100, memory_mb=64))
    bystander = h.add_alloc(evolve(mock_alloc(bystander_job, node), client_status="running"))
    run_job(h, gpu_job(id="high", priority=80))
    [alloc] = placed(h)
    assert device_ids(alloc) == ["GPU-0"]
    evicted = [a.id for allocs in h.plans[-1].node_preemptions.values() for a in allocs]
    assert evicted == [holder.id]
    assert bystander.id not in evicted


def test_no_preemption_within_priority_delta():
    h = Harness()
    h.state.set_scheduler_config(SchedulerConfiguration(
        preemption_config=PreemptionConfig(service_scheduler_enabled=True)))
    node = h.add_node(device_node(gpu_group(count=1)))
    _holder(h, node, 75, "close", ["GPU-0"])
    run_job(h, gpu_job(id="high", priority=80))
    assert "exhausted devices: nvidia/gpu" in failure(h)
