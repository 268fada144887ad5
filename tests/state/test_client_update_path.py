"""Client status reports (`AllocClientUpdate`): the follow-up evals the FSM makes when the
command asks for them (`evals=None`, Node.UpdateAlloc's rule), and `Txn.rewrite_allocs`
(one walk per alloc) against `put_alloc` of each merged alloc."""

from random import Random

import pytest
from state_fixtures import alloc, evaluation, job, node

from yurt.state import AllocClientUpdate, AllocUpdate, JobRegister, NodeRegister, PlanApply, StateStore
from yurt.state.cow import new_generation
from yurt.state.fsm_allocs import _replace
from yurt.state.txn import Txn
from yurt.structs import TaskEvent, TaskState, evolve

NOW = 7_000_000_000


def _setup(store, jobs=(("web", {}),), per_job=2, n=None):
    """Register `jobs` ((id, job kwargs)) and place `per_job` pending allocs of each on one
    node; returns {job id: [allocs]}."""
    n = n or node()
    store.apply(NodeRegister(node=n))
    placed = {}
    for job_id, kw in jobs:
        j = job(job_id, **kw)
        ev = evaluation(j)
        store.apply(JobRegister(job=j, eval=ev))
        stored = store.snapshot().job_by_id("default", job_id)
        allocs = [alloc(stored, n.id, ev.id, idx=i) for i in range(per_job)]
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation={n.id: allocs}, updated_at=1))
        placed[job_id] = allocs
    return placed


def _evals(store, trigger=None):
    found = [e for e in store.snapshot().evals() if e.triggered_by not in ("job-register",)]
    return [e for e in found if trigger is None or e.triggered_by == trigger]


def test_a_failed_report_makes_one_eval_per_job_and_the_log_keeps_it(tmp_path):
    store = StateStore.open(str(tmp_path))
    placed = _setup(store, (("web", {}), ("api", {}), ("old", {"stop": True})))
    (w1, w2), (a1, _), (o1, _) = placed["web"], placed["api"], placed["old"]
    cmd = AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status="failed"),
                                    AllocUpdate(id=w2.id, client_status="failed"),
                                    AllocUpdate(id=a1.id, client_status="running"),
                                    AllocUpdate(id=o1.id, client_status="failed")],
                            evals=None, updated_at=NOW)
    index = store.apply(cmd)
    (ev,) = _evals(store)
    stored_job = store.snapshot().job_by_id("default", "web")
    assert (ev.job_id, ev.triggered_by, ev.status) == ("web", "alloc-failure", "pending")
    assert (ev.create_time, ev.modify_time, ev.create_index) == (NOW, NOW, index)
    assert (ev.priority, ev.type, ev.job_modify_index) == (stored_job.priority, stored_job.type,
                                                           stored_job.job_modify_index)
    assert [e.id for e in cmd.evals] == [ev.id]  # what the log and the listeners see
    assert store.snapshot().alloc_by_id(w1.id).client_status == "failed"
    store.close()
    reopened = StateStore.open(str(tmp_path))  # the replay applies the logged eval, makes none
    assert [e.id for e in _evals(reopened)] == [ev.id]
    reopened.close()


def test_a_report_with_its_evals_given_makes_none():
    store = StateStore.open(None)
    (w1, _), = _setup(store).values()
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status="failed")], updated_at=NOW))
    assert _evals(store) == []
    assert store.snapshot().alloc_by_id(w1.id).client_status == "failed"


def test_no_eval_for_an_alloc_already_failed_nor_for_a_job_gone():
    store = StateStore.open(None)
    (w1, w2), = _setup(store).values()
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status="failed")], updated_at=NOW))
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status="failed")], evals=None, updated_at=NOW))
    assert _evals(store) == []
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id="gone-0000", client_status="failed")], evals=None))
    assert _evals(store) == []


def _mark_unknown(store, a):
    """The scheduler's disconnect: the alloc goes `unknown` through a plan."""
    stored = store.snapshot().alloc_by_id(a.id)
    store.apply(PlanApply(eval_id=stored.eval_id, node_allocation={
        stored.node_id: [evolve(stored, job=None, client_status="unknown")]}, updated_at=2))
    assert store.snapshot().alloc_by_id(a.id).client_status == "unknown"


@pytest.mark.parametrize(("status", "trigger"), [("running", "reconnect"), ("", "reconnect"),
                                                 ("failed", "reconnect"), ("unknown", None)])
def test_a_report_of_an_unknown_alloc_makes_a_reconnect_eval(status, trigger):
    store = StateStore.open(None)
    (w1, w2), = _setup(store).values()
    _mark_unknown(store, w1)
    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status=status),
                                          AllocUpdate(id=w2.id, client_status="running")], evals=None, updated_at=NOW))
    assert [e.triggered_by for e in _evals(store)] == ([trigger] if trigger else [])


def test_equal_task_states_of_one_command_are_stored_once():
    store = StateStore.open(None)
    (w1, w2, w3), = _setup(store, per_job=3).values()

    def states(t):
        return {"t": TaskState(state="running", started_at=t, events=[TaskEvent(type="Started", time=1)])}

    store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=w1.id, client_status="running", task_states=states("a")),
                                          AllocUpdate(id=w2.id, client_status="running", task_states=states("a")),
                                          AllocUpdate(id=w3.id, client_status="running", task_states=states("b"))],
                                  evals=None, updated_at=NOW))
    snap = store.snapshot()
    s1, s2, s3 = (snap.alloc_by_id(a.id).task_states for a in (w1, w2, w3))
    assert s1 is s2 and s1 == states("a")
    assert s3 is not s1 and s3 == states("b")


STATUSES = ("pending", "running", "complete", "failed", "lost", "unknown", "")


def _random_merge(rng):
    def merge(old, update):
        return _replace(old, client_status=update.client_status or old.client_status, client_description="x",
                        modify_index=99)
    return merge


@pytest.mark.parametrize("seed", range(8))
def test_rewrite_allocs_writes_what_put_alloc_of_each_does(seed):
    """Random reports (any client status, of allocs some of which the server stopped, some
    IDs unknown, some reported twice) through `rewrite_allocs` and through `put_alloc` of
    each merged alloc: the same tables, indexes, touched keys and job liveness."""
    rng = Random(seed)
    store = StateStore.open(None)
    nodes = [node() for _ in range(3)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    ids = []
    for j_id in ("a", "b"):
        j = job(j_id)
        ev = evaluation(j)
        store.apply(JobRegister(job=j, eval=ev))
        stored = store.snapshot().job_by_id("default", j_id)
        by_node = {}
        for i in range(20):
            a = alloc(stored, rng.choice(nodes).id, ev.id, idx=i, client_status=rng.choice(STATUSES[:6]),
                      desired_status=rng.choice(("run", "run", "stop")), job=stored)
            by_node.setdefault(a.node_id, []).append(a)
            ids.append(a.id)
        store.apply(PlanApply(eval_id=ev.id, job=stored, node_allocation=by_node, updated_at=1))
    updates = [AllocUpdate(id=rng.choice(ids + ["missing-1"]), client_status=rng.choice(STATUSES))
               for _ in range(30)]
    merge = _random_merge(rng)
    committed = store._tables
    fast = Txn(committed, new_generation(), committed.index + 1)
    fast.rewrite_allocs(updates, merge)
    slow = Txn(committed, new_generation(), committed.index + 1)
    for update in updates:
        old = slow.alloc_by_id(update.id)
        if old is not None:
            slow.put_alloc(merge(old, update), old)
    assert fast.touched == slow.touched
    def net(delta):
        return {k: v for k, v in delta.items() if v != [0, 0]}

    assert net(fast._live_delta) == net(slow._live_delta)
    a, b = fast.commit(), slow.commit()
    assert a.indexes == b.indexes
    assert a.allocs.to_dict() == b.allocs.to_dict()
    assert a.job_live.to_dict() == b.job_live.to_dict()
    assert a.allocs_by_node.to_dict() == b.allocs_by_node.to_dict()
    assert len(a.allocs) == len(b.allocs)
