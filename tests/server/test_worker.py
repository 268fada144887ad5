"""The worker: an eval's final update is stored in the loop callback that acks it (or the
eval is nacked when that update fails); system evals run several at a time per worker."""

import asyncio
import threading

import pytest

from yurt.server import Server, ServerConfig
from yurt.server.worker import Worker, WorkerPlanner
from yurt.state.commands import EvalUpsert, JobRegister, NodeRegister
from yurt.structs import Evaluation, evolve, generate_uuid
from yurt.testing.mock import mock_job, mock_node


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=0, eval_initial_nack_delay=30))
    await srv.start()
    yield srv
    await srv.stop()


def _system_job(server, job_id):
    job = evolve(mock_job(id=job_id), type="system")
    job = evolve(job, task_groups=[evolve(tg, count=1, networks=None) for tg in job.task_groups])
    server.state.apply(JobRegister(job=job))
    ev = Evaluation(id=generate_uuid(), job_id=job_id, type="system", status="pending",
                    triggered_by="job-register", priority=50)
    server.state.apply(EvalUpsert(evals=[ev]))
    return ev


def _worker(server, **kw):
    return Worker("w", server.state, server.broker, server.applier, server.now_ns, **kw)


async def test_the_final_update_is_stored_and_the_eval_acked(server):
    node = mock_node()
    server.state.apply(NodeRegister(node=node))
    ev = _system_job(server, "sys")
    got, token = server.broker.try_dequeue(["system"])
    worker = _worker(server)
    await worker.process(got, token)
    snap = server.state.snapshot()
    assert snap.eval_by_id(ev.id).status == "complete"
    assert [a.node_id for a in snap.allocs_by_job("default", "sys")] == [node.id]
    assert server.broker.outstanding(ev.id) is None and server.broker.stats().total_waiting == 0
    assert worker.processed == 1
    await worker.stop()


async def test_a_failing_final_update_nacks_the_eval(server, monkeypatch):
    server.state.apply(NodeRegister(node=mock_node()))
    ev = _system_job(server, "sys")
    got, token = server.broker.try_dequeue(["system"])

    def fail(self):
        raise RuntimeError("log write failed")

    monkeypatch.setattr(WorkerPlanner, "apply_deferred", fail)
    worker = _worker(server)
    await worker.process(got, token)
    assert server.state.snapshot().eval_by_id(ev.id).status == "pending"
    stats = server.broker.stats()
    assert stats.total_unacked == 0 and stats.total_waiting == 1  # nacked: redelivered later
    assert worker.processed == 0
    await worker.stop()


async def test_a_worker_runs_several_system_evals_at_once(server, monkeypatch):
    import yurt.scheduler

    evals = [_system_job(server, f"sys-{i}") for i in range(3)]
    barrier = threading.Barrier(3, timeout=10)  # passes only when all three run together

    class Waiting:
        def __init__(self, planner):
            self.planner = planner

        def process(self, ev):
            barrier.wait()
            self.planner.update_eval(evolve(ev, status="complete"))

    monkeypatch.setattr(yurt.scheduler, "new_scheduler", lambda typ, snap, planner, **kw: Waiting(planner))
    worker = _worker(server, system_evals=3)
    worker.start()
    for _ in range(500):
        if worker.processed == 3:
            break
        await asyncio.sleep(0.02)
    await worker.stop()
    snap = server.state.snapshot()
    assert [snap.eval_by_id(ev.id).status for ev in evals] == ["complete"] * 3


async def test_the_gc_pause_ends_after_the_evals_objects_are_freed(server, monkeypatch):
    """A collection due when the pause ends must not walk the eval's scheduler and snapshot
    (`yurt.gcpolicy`): the worker lets go of them before it ends the pause."""
    import contextlib
    import gc
    import weakref

    import yurt.scheduler
    import yurt.server.worker as worker_mod

    ev = _system_job(server, "sys")
    got, token = server.broker.try_dequeue(["system"])
    made, seen = [], []

    class Scheduler:
        def __init__(self, state):
            self.state = state

        def process(self, ev):
            seen.append(("running", gc.isenabled()))

    def new_scheduler(kind, snapshot, planner, now_ns, config):
        sched = Scheduler(snapshot)
        made.append(weakref.ref(sched))
        return sched

    real = worker_mod.paused_gc

    @contextlib.contextmanager
    def watched():
        with real():
            yield
            seen.append(("pause ends", made[0]() is None))

    monkeypatch.setattr(yurt.scheduler, "new_scheduler", new_scheduler)
    monkeypatch.setattr(worker_mod, "paused_gc", watched)
    worker = _worker(server)
    await worker.process(got, token)
    assert seen == [("running", False), ("pause ends", True)], seen
    assert gc.isenabled()
    assert server.broker.outstanding(ev.id) is None
    await worker.stop()
