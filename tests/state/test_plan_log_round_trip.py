"""A `PlanApply` must come back from the log as it went in, field for field (every field of
its allocs and their metrics set, so a change to the log encoding that drops or merges one
fails here), and a replay of the log must build the same state as the commits did.
(A packed log form, one template per alloc shape, was tried in wt-pa2 and measured slower
in a large state: see bench/RESULTS.md.)"""

from __future__ import annotations

import msgspec

from yurt.state import (
    JobRegister,
    NodeRegister,
    PlanApply,
    StateStore,
    decode_command,
    encode_command,
)
from yurt.structs import (
    Allocation,
    AllocDeploymentStatus,
    AllocState,
    DesiredTransition,
    Evaluation,
    TaskState,
    evolve,
)
from yurt.structs.alloc import (
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    AllocMetric,
    NodeScoreMeta,
    RescheduleEvent,
    RescheduleTracker,
)
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _metric(seed: int) -> AllocMetric:
    """An AllocMetric with every field set (not its default)."""
    values = dict(
        nodes_evaluated=seed + 1, nodes_filtered=seed + 2, nodes_in_pool=5000 + seed, nodes_available={"dc1": seed},
        class_filtered={"c": seed}, constraint_filtered={"k": seed}, nodes_exhausted=seed + 3,
        class_exhausted={"c2": seed}, dimension_exhausted={"cpu": seed}, quota_exhausted=[f"q{seed}"],
        resources_exhausted={"t": {"CPU": seed}}, scores={f"n{seed}.binpack": 0.5 + seed},
        score_meta_data=[NodeScoreMeta(node_id=f"n{seed}", scores={"binpack": 0.25 + seed}, norm_score=0.125 + seed)],
        allocation_time=seed + 4, coalesced_failures=seed + 5, failure_reasons=[f"r{seed}"],
    )
    assert set(values) == set(AllocMetric.__struct_fields__), "a new AllocMetric field: set it here"
    metric = AllocMetric(**values)
    for name in AllocMetric.__struct_fields__:
        assert getattr(metric, name) != getattr(AllocMetric(), name), name
    return metric


def _full_alloc(seed: int) -> Allocation:
    """An Allocation with every field set (not its default)."""
    job = mock_job(id=f"job-{seed}")
    values = dict(
        id=f"alloc-{seed}", namespace=f"ns-{seed}", eval_id=f"eval-{seed}", name=f"job.web[{seed}]",
        node_id=f"node-{seed}", node_name=f"name-{seed}", job_id=f"job-{seed}", job=job, task_group=f"web{seed}",
        allocated_resources=AllocatedResources(
            tasks={"t": AllocatedTaskResources()}, task_lifecycles={"t": seed},
            shared=AllocatedSharedResources(disk_mb=seed + 1)),
        metrics=_metric(seed), desired_status="stop", desired_description=f"why {seed}",
        desired_transition=DesiredTransition(migrate=True), client_status="running",
        client_description=f"said {seed}", task_states={"t": TaskState(state="running", restarts=seed)},
        deployment_id=f"dep-{seed}", deployment_status=AllocDeploymentStatus(healthy=True, modify_index=seed),
        reschedule_tracker=RescheduleTracker(events=[RescheduleEvent(prev_alloc_id=f"p{seed}")]),
        alloc_states=[AllocState(field="ClientStatus", value="unknown")], network_status={"Address": f"10.0.0.{seed}"},
        followup_eval_id=f"f-{seed}", previous_allocation=f"prev-{seed}", next_allocation=f"next-{seed}",
        preempted_allocations=[f"pre-{seed}"], preempted_by_allocation=f"by-{seed}", create_index=seed + 10,
        modify_index=seed + 11, alloc_modify_index=seed + 12, create_time=seed + 13, modify_time=seed + 14,
        job_version=seed + 15,
    )
    assert set(values) == set(Allocation.__struct_fields__), "a new Allocation field: set it here"
    alloc = Allocation(**values)
    for name in Allocation.__struct_fields__:
        assert getattr(alloc, name) != getattr(Allocation(), name), name
    return alloc


def _tag(data: bytes) -> str:
    return msgspec.msgpack.decode(data)["type"]


def _placements(template: Allocation, count: int, nodes: int) -> dict[str, list[Allocation]]:
    """Copies of `template` differing in the fields a scheduler sets per placement."""
    out: dict[str, list[Allocation]] = {}
    for i in range(count):
        node = f"node-{i % nodes}"
        metrics = evolve(template.metrics, nodes_evaluated=i, nodes_in_pool=7000 + i, nodes_exhausted=i % 3,
                         score_meta_data=[NodeScoreMeta(node_id=node, norm_score=i / 7)], allocation_time=i * 11)
        out.setdefault(node, []).append(evolve(
            template, id=f"a-{i}", name=f"web[{i}]", node_id=node, node_name=f"n{i % nodes}", metrics=metrics,
            previous_allocation=f"p-{i}" if i % 2 else "", create_time=1_000 + i, modify_time=2_000 + i))
    return out


def _assert_round_trip(cmd: PlanApply) -> PlanApply:
    data = encode_command(cmd)
    assert _tag(data) == "PlanApply"
    back = decode_command(data)
    assert type(back) is PlanApply
    assert back == cmd
    assert list(back.node_allocation) == list(cmd.node_allocation)  # node order: the commit's order
    for node_id, allocs in cmd.node_allocation.items():
        for got, want in zip(back.node_allocation[node_id], allocs, strict=True):
            for name in Allocation.__struct_fields__:
                assert getattr(got, name) == getattr(want, name), name
            if want.metrics is not None:
                for name in AllocMetric.__struct_fields__:
                    assert getattr(got.metrics, name) == getattr(want.metrics, name), name
    return back


def test_every_field_of_plan_allocs_round_trips():
    full = _full_alloc(1)
    other = _full_alloc(2)  # differs from the first in every field: a template of its own
    no_metrics = evolve(_full_alloc(3), metrics=None)
    placements = _placements(full, 40, 7)
    placements["node-other"] = [other, no_metrics]
    placements["node-empty"] = []
    stop = evolve(_full_alloc(4), desired_status="stop")
    cmd = PlanApply(eval_id="e1", job=mock_job(id="plan-job"), node_update={"n-s": [stop]},
                    node_allocation=placements, node_preemptions={"n-p": [evolve(_full_alloc(5), desired_status="evict")]},
                    evals=[Evaluation(id="ev", job_id="j")], updated_at=77)
    back = _assert_round_trip(cmd)
    assert back.node_update == cmd.node_update and back.node_preemptions == cmd.node_preemptions
    assert back.evals == cmd.evals and back.updated_at == 77 and back.job == cmd.job


def test_a_replay_of_logged_plans_builds_the_same_state(tmp_path):
    store = StateStore.open(str(tmp_path))
    nodes = [mock_node() for _ in range(4)]
    for node in nodes:
        store.apply(NodeRegister(node=node))
    job = mock_job(id="web")
    store.apply(JobRegister(job=job))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    first = []
    shared = evolve(mock_alloc(job, nodes[0], 0).allocated_resources)  # one object, as the scheduler shares it
    for i in range(12):
        node = nodes[i % 4]
        first.append(evolve(mock_alloc(job, node, i), job=None, allocated_resources=shared, eval_id="e1",
                            metrics=AllocMetric(nodes_evaluated=i, score_meta_data=[NodeScoreMeta(node_id=node.id)])))
    by_node: dict[str, list[Allocation]] = {}
    for a in first:
        by_node.setdefault(a.node_id, []).append(a)
    store.apply(PlanApply(eval_id="e1", job=job, node_allocation=by_node, updated_at=10))
    stored = store.snapshot().alloc_by_id(first[0].id)
    second = PlanApply(eval_id="e2", job=job, updated_at=20,
                       node_update={stored.node_id: [evolve(stored, desired_status="stop", job=None)]},
                       node_allocation={nodes[1].id: [evolve(mock_alloc(job, nodes[1], 99), job=None,
                                                             previous_allocation=stored.id)]})
    store.apply(second)
    ports = {}  # each alloc its own ports
    for i in range(12):
        ports.setdefault(nodes[i % 4].id, []).append(evolve(mock_alloc(job, nodes[i % 4], 100 + i), job=None))
    store.apply(PlanApply(eval_id="e3", job=job, node_allocation=ports, updated_at=30))
    tags = [_tag(data) for _, data in store._backend.entries_after(0)]
    assert tags.count("PlanApply") == 3
    want = {a.id: msgspec.to_builtins(a) for a in store.snapshot().allocs()}
    index = store.latest_index
    store.close()
    replayed = StateStore.open(str(tmp_path))
    try:
        assert replayed.latest_index == index
        assert {a.id: msgspec.to_builtins(a) for a in replayed.snapshot().allocs()} == want
        assert len(want) == 25
    finally:
        replayed.close()
