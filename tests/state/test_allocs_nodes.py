"""Plan results, client updates, transitions, eval GC, nodes and scheduler config."""

import pytest
from state_fixtures import alloc, evaluation, job, node

from yurt.state import (
    AllocClientUpdate,
    AllocDesiredTransition,
    AllocUpdate,
    EvalDelete,
    EvalUpsert,
    JobRegister,
    NodeDeregister,
    NodeRegister,
    NodeUpdateDrain,
    NodeUpdateEligibility,
    NodeUpdateStatus,
    PlanApply,
    SchedulerConfigSet,
    StateError,
    StateStore,
)
from yurt.structs import (
    AllocDeploymentStatus,
    DesiredTransition,
    DrainStrategy,
    SchedulerConfiguration,
    TaskState,
    evolve,
)


@pytest.fixture
def world():
    """A store with one node and a registered job; returns (store, job as stored, node, eval)."""
    store = StateStore.open(None)
    j, n = job(), node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    yield store, store.snapshot().job_by_id("default", "web"), n, ev
    store.close()


def test_plan_places_allocs_with_the_plan_job_and_indexes(world):
    store, j, n, ev = world
    a = alloc(j, n.id, ev.id)
    idx = store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}, updated_at=77))
    snap = store.snapshot()
    stored = snap.alloc_by_id(a.id)
    assert stored.job is j
    assert (stored.create_index, stored.modify_index, stored.alloc_modify_index) == (idx, idx, idx)
    assert stored.create_time == 77 and stored.modify_time == 77
    assert [x.id for x in snap.allocs_by_job("default", "web")] == [a.id]
    assert [x.id for x in snap.allocs_by_node(n.id)] == [a.id]
    assert [x.id for x in snap.allocs_by_eval(ev.id)] == [a.id]
    assert snap.table_index("allocs") == idx


def test_plan_without_job_for_a_new_alloc_is_rejected(world):
    store, j, n, ev = world
    before = store.latest_index
    with pytest.raises(StateError, match="without a job"):
        store.apply(PlanApply(eval_id=ev.id, node_allocation={n.id: [alloc(j, n.id, ev.id)]}))
    assert store.latest_index == before and store.snapshot().allocs() == []


def test_plan_update_keeps_client_fields_and_moves_eval_index(world):
    store, j, n, ev = world
    a = alloc(j, n.id, ev.id)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}))
    states = {"t": TaskState(state="running")}
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running", task_states=states)]))
    ev2 = evaluation(j)
    idx = store.apply(PlanApply(eval_id=ev2.id, job=j, node_allocation={n.id: [evolve(a, eval_id=ev2.id)]}))
    snap = store.snapshot()
    stored = snap.alloc_by_id(a.id)
    assert stored.client_status == "running" and stored.task_states == states
    assert stored.alloc_modify_index == idx and stored.create_index < idx
    assert snap.allocs_by_eval(ev.id) == [] and [x.id for x in snap.allocs_by_eval(ev2.id)] == [a.id]


def test_plan_stops_and_preempts_merge_into_stored_allocs(world):
    store, j, n, ev = world
    a, b, c = (alloc(j, n.id, ev.id, idx=i) for i in range(3))
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a, b]}))
    stop = evolve(a, desired_status="stop", desired_description="alloc not needed", job=None)
    preempt = evolve(b, preempted_by_allocation=c.id, job=None)
    store.apply(
        PlanApply(
            eval_id=ev.id,
            job=j,
            node_update={n.id: [stop]},
            node_preemptions={n.id: [preempt]},
            node_allocation={n.id: [evolve(c, previous_allocation=a.id)]},
            updated_at=5,
        )
    )
    snap = store.snapshot()
    sa, sb, sc = (snap.alloc_by_id(x.id) for x in (a, b, c))
    assert sa.desired_status == "stop" and sa.desired_description == "alloc not needed" and sa.job is j
    assert sa.next_allocation == c.id
    assert sb.desired_status == "evict" and sb.preempted_by_allocation == c.id
    assert sb.desired_description == f"Preempted by alloc ID {c.id}"
    assert sc.desired_status == "run"


def test_plan_upserts_its_evals(world):
    store, j, n, ev = world
    blocked = evaluation(j, status="blocked", triggered_by="queued-allocs")
    store.apply(PlanApply(eval_id=ev.id, job=j, evals=[blocked]))
    assert store.snapshot().eval_by_id(blocked.id).status == "blocked"


def test_client_update_merges_client_fields_only(world):
    store, j, n, ev = world
    a = alloc(j, n.id, ev.id)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}))
    placed = store.snapshot().alloc_by_id(a.id)
    health = AllocDeploymentStatus(healthy=True, timestamp="2026-01-01T00:00:00Z")
    idx = store.apply(
        AllocClientUpdate(
            allocs=[
                AllocUpdate(
                    id=a.id,
                    client_status="running",
                    client_description="Tasks are running",
                    deployment_status=health,
                    network_status={"Address": "10.0.0.1"},
                ),
                AllocUpdate(id="does-not-exist", client_status="running"),
            ],
            updated_at=99,
        )
    )
    stored = store.snapshot().alloc_by_id(a.id)
    assert stored.client_status == "running" and stored.client_description == "Tasks are running"
    assert stored.deployment_status.healthy is True and stored.deployment_status.modify_index == idx
    assert stored.network_status == {"Address": "10.0.0.1"}
    assert stored.modify_index == idx and stored.modify_time == 99
    assert stored.alloc_modify_index == placed.alloc_modify_index
    assert stored.desired_status == "run" and stored.job is j
    assert store.snapshot().alloc_by_id("does-not-exist") is None


def test_desired_transition_merges_set_fields(world):
    store, j, n, ev = world
    a = alloc(j, n.id, ev.id, desired_transition=DesiredTransition(reschedule=True))
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}))
    follow = evaluation(j, triggered_by="alloc-stop")
    store.apply(AllocDesiredTransition(transitions={a.id: DesiredTransition(migrate=True)}, evals=[follow]))
    t = store.snapshot().alloc_by_id(a.id).desired_transition
    assert t.migrate is True and t.reschedule is True
    assert store.snapshot().eval_by_id(follow.id) is not None


def test_complete_eval_cancels_blocked_evals_of_the_job(world):
    store, j, n, ev = world
    blocked = evaluation(j, status="blocked")
    store.apply(EvalUpsert(evals=[blocked]))
    store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
    stored = store.snapshot().eval_by_id(blocked.id)
    assert stored.status == "canceled" and ev.id in stored.status_description


def test_eval_upsert_keeps_create_index(world):
    store, j, n, ev = world
    created = store.snapshot().eval_by_id(ev.id).create_index
    idx = store.apply(EvalUpsert(evals=[evolve(ev, status="complete")]))
    stored = store.snapshot().eval_by_id(ev.id)
    assert stored.create_index == created and stored.modify_index == idx
    assert [e.id for e in store.snapshot().evals_by_job("default", "web")] == [ev.id]


def test_eval_delete_removes_evals_and_allocs_from_every_index(world):
    store, j, n, ev = world
    a = alloc(j, n.id, ev.id)
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: [a]}))
    idx = store.apply(EvalDelete(eval_ids=[ev.id], alloc_ids=[a.id]))
    snap = store.snapshot()
    assert snap.eval_by_id(ev.id) is None and snap.alloc_by_id(a.id) is None
    assert snap.allocs_by_node(n.id) == [] and snap.allocs_by_job("default", "web") == []
    assert snap.evals_by_job("default", "web") == []
    assert snap.table_index("evals") == idx and snap.table_index("allocs") == idx


def test_node_register_keeps_eligibility_drain_and_create_index():
    store = StateStore.open(None)
    n = node()
    first = store.apply(NodeRegister(node=n))
    store.apply(NodeUpdateDrain(node_id=n.id, drain_strategy=DrainStrategy(deadline=10)))
    idx = store.apply(NodeRegister(node=evolve(n, attributes={"a": "b"})))
    stored = store.snapshot().node_by_id(n.id)
    assert stored.create_index == first and stored.modify_index == idx
    assert stored.scheduling_eligibility == "ineligible" and stored.drain_strategy is not None
    assert stored.attributes == {"a": "b"} and stored.events[0].message == "Node registered"


def test_node_status_eligibility_drain_and_deregister():
    store = StateStore.open(None)
    n = node()
    store.apply(NodeRegister(node=n))
    j = job()
    ev = evaluation(j, triggered_by="node-update", node_id=n.id)
    store.apply(NodeUpdateStatus(node_id=n.id, status="down", updated_at=1_700_000_000_123_456_789, evals=[ev]))
    stored = store.snapshot().node_by_id(n.id)
    assert stored.status == "down" and stored.status_updated_at == 1_700_000_000
    assert store.snapshot().eval_by_id(ev.id) is not None
    store.apply(NodeUpdateEligibility(node_id=n.id, eligibility="ineligible"))
    assert store.snapshot().node_by_id(n.id).scheduling_eligibility == "ineligible"
    store.apply(NodeUpdateDrain(node_id=n.id, drain_strategy=DrainStrategy()))
    with pytest.raises(StateError, match="draining"):
        store.apply(NodeUpdateEligibility(node_id=n.id, eligibility="eligible"))
    store.apply(NodeUpdateDrain(node_id=n.id, drain_strategy=None, mark_eligible=True))
    assert store.snapshot().node_by_id(n.id).scheduling_eligibility == "eligible"
    store.apply(NodeDeregister(node_ids=[n.id]))
    assert store.snapshot().nodes() == []
    with pytest.raises(StateError, match=f'node "{n.id}" not found'):
        store.apply(NodeUpdateStatus(node_id=n.id, status="ready"))


def test_scheduler_config_keeps_create_index():
    store = StateStore.open(None)
    default = store.snapshot().scheduler_config()
    assert default.scheduler_algorithm == "binpack" and default.modify_index == 0
    first = store.apply(SchedulerConfigSet(config=SchedulerConfiguration()))
    second = store.apply(SchedulerConfigSet(config=SchedulerConfiguration(scheduler_algorithm="spread")))
    cfg = store.snapshot().scheduler_config()
    assert cfg.scheduler_algorithm == "spread" and (cfg.create_index, cfg.modify_index) == (first, second)
    assert store.snapshot().table_index("scheduler_config") == second


def test_by_prefix_and_namespaces():
    store = StateStore.open(None)
    store.apply(JobRegister(job=job("web")))
    store.apply(JobRegister(job=job("web2", namespace="prod")))
    store.apply(JobRegister(job=job("db")))
    snap = store.snapshot()
    assert [j.id for j in snap.by_prefix("jobs", "we")] == ["web", "web2"]
    assert [j.id for j in snap.by_prefix("jobs", "we", ns="prod")] == ["web2"]
    assert [j.id for j in snap.jobs("default")] == ["db", "web"]
    assert len(snap.jobs("*")) == 3 and len(snap.jobs()) == 3
    with pytest.raises(ValueError, match="summaries"):
        snap.by_prefix("summaries", "x")


def test_batch_is_all_or_nothing(world):
    store, j, n, ev = world
    before = store.latest_index
    other = job("other")
    with pytest.raises(StateError):
        store.apply_batch([JobRegister(job=other), NodeUpdateStatus(node_id="missing", status="down")])
    assert store.latest_index == before and store.snapshot().job_by_id("default", "other") is None
    indexes = store.apply_batch([JobRegister(job=other), NodeUpdateStatus(node_id=n.id, status="down")])
    assert indexes == [before + 1, before + 2] and store.latest_index == before + 2


def test_alloc_and_eval_prefix_lookups(world):
    store, j, n, ev = world
    ids = ["ab12-x", "ab34-y", "ac00-z", "b000-w"]
    placed = [alloc(j, n.id, ev.id, idx=i, id=a) for i, a in enumerate(ids)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: placed}))
    snap = store.snapshot()
    for prefix in ("", "a", "ab", "ab3", "ab34-y", "ac", "b", "zz"):
        expected = sorted(a for a in ids if a.startswith(prefix))
        assert [a.id for a in snap.by_prefix("allocs", prefix)] == expected, prefix
    assert [e.id for e in snap.by_prefix("evals", ev.id[:3])] == [ev.id]
    assert snap.by_prefix("allocs", "ab", ns="other") == []
    store.apply(EvalDelete(eval_ids=[ev.id], alloc_ids=["ab12-x"]))
    snap = store.snapshot()
    assert [a.id for a in snap.by_prefix("allocs", "ab")] == ["ab34-y"]
    assert snap.by_prefix("evals", ev.id[:3]) == []


def _alloc_tables(store):
    t = store._tables
    names = ("allocs", "allocs_by_job", "allocs_by_node", "allocs_by_eval", "allocs_by_prefix", "job_live")

    def plain(value):
        return {k: plain(v) for k, v in value.items()} if hasattr(value, "to_dict") else value
    return {name: plain(getattr(t, name)) for name in names}


def test_batched_new_alloc_indexes_equal_one_at_a_time(world):
    """A plan's new allocs are indexed a bucket at a time: the same indexes as one by one,
    also when an alloc of the batch is written again or deleted before the batch ends."""
    from yurt.state.txn import Txn

    store, j, n, ev = world
    n2 = node()
    store.apply(NodeRegister(node=n2))
    allocs = [alloc(j, (n.id, n2.id)[i % 2], ev.id, idx=i, job=j) for i in range(150)]
    results = []
    for batched in (False, True):
        base = store._tables
        txn = Txn(base, store._gen + 1, base.index + 1)
        if batched:
            txn.batch_new_allocs()
        for a in allocs:
            txn.put_alloc(evolve(a, alloc_modify_index=txn.index))
        txn.delete_alloc(allocs[5].id)
        txn.put_alloc(evolve(allocs[5], alloc_modify_index=txn.index))
        txn.put_alloc(evolve(allocs[3], node_id=n.id if allocs[3].node_id == n2.id else n2.id))
        committed = txn.commit()
        saved, store._tables = store._tables, committed
        results.append(_alloc_tables(store))
        store._tables = saved
        assert results[-1]["allocs_by_node"][n.id]  # the indexes were written
    assert results[0] == results[1]
    assert _alloc_tables(store)["allocs"] == {}  # the committed state was not touched
