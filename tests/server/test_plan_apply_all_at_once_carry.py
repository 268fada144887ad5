"""An all-at-once plan with a rejected node commits none of its placements, yet a command
is still written when it carries a deployment change. `evaluate_plan` must then report no
counted usage for the nodes that did fit: the usage carrier takes the applier's counts for
its own `PlanApply` without re-checking each node."""

from __future__ import annotations

from yurt.server.plan_apply import evaluate_plan
from yurt.state import JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedTaskResources,
    Deployment,
    Plan,
    generate_uuid,
)
from yurt.testing.mock import mock_alloc, mock_job, mock_node


def _sized(job, node, memory_mb: int):
    res = AllocatedResources(tasks={"web": AllocatedTaskResources(
        cpu=AllocatedCpuResources(cpu_shares=100), memory=AllocatedMemoryResources(memory_mb=memory_mb))})
    return mock_alloc(job, node, allocated_resources=res)


def _plan(job, roomy, full) -> Plan:
    plan = Plan(eval_id=generate_uuid(), job=job, all_at_once=True,
                deployment=Deployment(id=generate_uuid(), namespace=job.namespace, job_id=job.id))
    plan.append_alloc(_sized(job, roomy, 2000))
    plan.append_alloc(_sized(job, full, 2000))
    return plan


def test_a_rejected_all_at_once_plan_reports_no_counted_usage():
    store = StateStore.open(None)
    roomy, full = mock_node(), mock_node()
    store.apply_batch([NodeRegister(node=roomy), NodeRegister(node=full)])
    job = mock_job(id="web")
    store.apply(JobRegister(job=job))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    store.apply(PlanApply(eval_id="e0", job=job, node_allocation={full.id: [_sized(job, full, 7000)]}))
    placed: dict = {}
    result, _ = evaluate_plan(store.snapshot(), _plan(job, roomy, full), placed)
    assert result.node_allocation == {} and result.rejected_nodes == [full.id]
    assert placed == {}
