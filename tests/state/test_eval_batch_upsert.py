"""upsert_evals of many evals in one pass (`Txn.put_evals`) stores what one at a time does:
the evals with their indexes, each job's bucket, the ID prefix index, job liveness."""

from yurt.state.commands import EvalUpsert, JobRegister
from yurt.state.cow import new_generation
from yurt.state.fsm_jobs import upsert_evals
from yurt.state.store import StateStore
from yurt.state.txn import Txn
from yurt.structs import evolve
from yurt.testing.mock import mock_eval, mock_job


def _store():
    store = StateStore()
    for job_id in ("a", "b"):
        store.apply(JobRegister(job=mock_job(id=job_id)))
    return store


def _evals():
    return [mock_eval(mock_job(id=job_id)) for job_id in ("a", "b", "a", "a", "b")]


def _view(tables, ids):
    from yurt.state.tables import StateReader

    r = StateReader(tables)
    return (
        [(e.id, e.status, e.create_index, e.modify_index) for e in (r.eval_by_id(i) for i in ids)],
        {j: sorted(e.id for e in r.evals_by_job("default", j)) for j in ("a", "b")},
        sorted(e.id for e in r.evals(None)),
        {j: tables.job_live.get(("default", j)) for j in ("a", "b")},
        sorted(id_ for bucket in tables.evals_by_prefix.values() for id_ in bucket),
    )


def _apply(store, evals, one_at_a_time):
    base = store._tables
    txn = Txn(base, new_generation(), base.index + 1)
    if one_at_a_time:
        for ev in evals:
            upsert_evals(txn, [ev])
    else:
        upsert_evals(txn, evals)
    return txn.commit()


def test_batch_equals_one_at_a_time_for_new_and_updated_evals():
    store = _store()
    first = _evals()
    store.apply(EvalUpsert(evals=first[:3]))  # three stored, two new below
    canceled = [evolve(e, status="canceled") for e in first[:2]]
    batch = canceled + first[3:]
    ids = [e.id for e in first]
    assert _view(_apply(store, batch, False), ids) == _view(_apply(store, batch, True), ids)
    after = _view(_apply(store, batch, False), ids)
    assert [s for _, s, _, _ in after[0]] == ["canceled", "canceled", "pending", "pending", "pending"]
    assert after[0][0][2] < after[0][0][3]  # an updated eval keeps its create index


def test_a_batch_with_a_complete_eval_or_a_repeated_id_takes_the_ordered_path():
    from yurt.state.fsm_jobs import _batchable

    evals = _evals()
    assert _batchable(evals)
    assert not _batchable(evals + [evals[0]])
    assert not _batchable(evals + [evolve(evals[1], status="complete")])
