"""The plan applier carries the scheduler's per-node usage cache over to the state after
each commit. For nodes that only get new allocs it uses the sums its fit check made
(`_Placed`); the carried usage must equal a recount of the node's allocs, and it must not
be used when another write came between the checked snapshot and the commit."""

from __future__ import annotations

import uuid
from random import Random

from yurt.scheduler import new_scheduler
from yurt.scheduler import usage as usage_mod
from yurt.server import plan_apply
from yurt.server.plan_apply import (
    PlanApplier,
    evaluate_plan,
    plan_apply_command,
    usage_carrier,
)
from yurt.state import (
    AllocClientUpdate,
    AllocUpdate,
    JobRegister,
    NodeRegister,
    StateStore,
)
from yurt.structs import Evaluation, PlanResult, evolve
from yurt.testing.mock import mock_batch_job, mock_job, mock_node


class _Recorder:
    def __init__(self) -> None:
        self.plans = []

    def submit_plan(self, plan):
        self.plans.append(plan)
        return PlanResult(node_allocation=plan.node_allocation, node_update=plan.node_update), None

    def update_eval(self, ev):
        pass

    create_eval = reblock_eval = update_eval


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _content(base) -> tuple:
    """What a base says of its node (the job map without emptied entries)."""
    return (base.cap_cpu, base.cap_mem, base.free_cpu, base.free_mem, base.free_disk, base.free_cores, base.ports,
            base.min_port, base.max_port, base.ip, {k: v for k, v in base.jobs.items() if v}, base.conflict)


def _plans(store: StateStore, job, rng: Random):
    store.apply(JobRegister(job=job))
    job = store.snapshot().job_by_id(job.namespace, job.id)
    planner = _Recorder()
    ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    new_scheduler(job.type, store.snapshot(), planner, now_ns=1_000_000_000).process(ev)
    return planner.plans


def test_usage_carried_from_the_fit_check_equals_a_recount(monkeypatch):
    rng = Random(3)
    store = StateStore.open(None)
    nodes = [mock_node(id=_uuid(rng)) for _ in range(6)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    applier = PlanApplier(store, now_ns=lambda: 1_000_000_000)
    carried = []
    original = plan_apply._carry_placed
    monkeypatch.setattr(plan_apply, "_carry_placed", lambda counted, index: (carried.append(counted.node.id),
                                                                             original(counted, index)))
    # services with dynamic ports and batch jobs without, several jobs and groups per node
    jobs = [mock_job(id=f"web-{i}") for i in range(3)] + [mock_batch_job(id=f"batch-{i}") for i in range(2)]
    for step in range(12):
        job = jobs[step % len(jobs)]
        tg = job.task_groups[0]
        job = jobs[step % len(jobs)] = evolve(job, task_groups=[evolve(tg, count=tg.count + rng.randint(1, 5))])
        for plan in _plans(store, job, rng):
            applier.apply(plan)
        after = store.snapshot()
        for node in nodes:
            node = after.node_by_id(node.id)
            base = usage_mod.cached_base(node, after.node_allocs_index(node.id))
            assert base is not None, (step, node.id)
            fresh = usage_mod.NodeBase(node, after.allocs_by_node(node.id), ())
            assert _content(base) == _content(fresh), (step, node.id)
        # some allocs stop on their own: the next plans' nodes are not all fresh placements
        allocs = [a for a in after.allocs() if not a.terminal]
        store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status=rng.choice(("running", "complete")))
                                              for a in allocs if rng.random() < 0.3]))
    assert len(carried) > 20


def test_counted_usage_is_not_carried_when_another_write_came_between():
    rng = Random(4)
    store = StateStore.open(None)
    node = mock_node(id=_uuid(rng))
    store.apply(NodeRegister(node=node))
    carrier = usage_carrier(store)
    job = mock_job(id="web")
    plan = _plans(store, job, rng)[0]
    before = store.snapshot()
    placed: dict = {}
    result, _ = evaluate_plan(before, plan, placed)
    assert node.id in placed
    # a write between the fit check and the commit: another plan's allocs on the node
    other = _plans(store, mock_job(id="other"), rng)[0]
    store.apply(plan_apply_command(other, PlanResult(node_allocation=other.node_allocation), 1))
    command = plan_apply_command(plan, result, 1)
    carrier.expect(command, before, placed)  # checked on `before`: its sums miss the other plan
    store.apply(command)
    after = store.snapshot()
    base = usage_mod.cached_base(after.node_by_id(node.id), after.node_allocs_index(node.id))
    # the carrier saw both commits: what it carried holds both plans' allocs
    assert base is not None
    fresh = usage_mod.NodeBase(after.node_by_id(node.id), after.allocs_by_node(node.id), ())
    assert _content(base) == _content(fresh)
    assert len(base.jobs) == 2


def test_client_status_updates_carry_the_usage_over_and_it_equals_a_recount():
    """A client's status reports bump its node's alloc index; the batcher carries the cached
    usage over (`advance_usage_of_updates`), so the next evaluation does not recount the
    node's allocs, and what it carries (running: unchanged; complete: freed) is a recount."""
    from yurt.server.endpoints.allocs import AllocUpdateBatcher

    class _Server:
        def __init__(self, state):
            self.state = state

    rng = Random(5)
    store = StateStore.open(None)
    nodes = [mock_node(id=_uuid(rng)) for _ in range(4)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    applier = PlanApplier(store, now_ns=lambda: 1_000_000_000)
    batcher = AllocUpdateBatcher(_Server(store), 0.0, now_ns=lambda: 2_000_000_000)
    job = mock_job(id="web")
    job = evolve(job, task_groups=[evolve(job.task_groups[0], count=8)])
    for plan in _plans(store, job, rng):
        applier.apply(plan)
    for status in ("running", "complete"):
        allocs = [a for a in store.snapshot().allocs() if not a.terminal]
        batcher._pending = {a.id: AllocUpdate(id=a.id, client_status=status) for a in allocs[: len(allocs) // 2 + 1]}
        batcher.flush()
        after = store.snapshot()
        touched = {a.node_id for a in allocs[: len(allocs) // 2 + 1]}
        for node_id in touched:
            node = after.node_by_id(node_id)
            base = usage_mod.cached_base(node, after.node_allocs_index(node_id))
            assert base is not None, (status, node_id)
            fresh = usage_mod.NodeBase(node, after.allocs_by_node(node_id), ())
            assert _content(base) == _content(fresh), (status, node_id)
