"""W3's eval churn made cheaper without changing what the state ends with: a register
group's evals carry the index their command lands at (stored as written, tracked by the
broker without a lookup), and the broker's superseded evals are canceled a chunk per loop
turn instead of all in one command."""

import asyncio

from yurt.server import server as server_mod
from yurt.server.config import ServerConfig
from yurt.server.endpoints.jobs import register_job
from yurt.server.endpoints.nodes import register_nodes
from yurt.server.server import Server
from yurt.state.commands import EvalUpsert
from yurt.structs import Evaluation, evolve, generate_uuid
from yurt.testing.mock import mock_node, mock_system_job


async def _storm(server: Server, jobs: int, nodes: int, per_turn: int) -> list:
    for i in range(jobs):
        register_job(server, mock_system_job(id=f"sys-{i}"))
    fleet = [evolve(mock_node(), status="ready") for _ in range(nodes)]
    for first in range(0, nodes, per_turn):
        assert all(isinstance(r, tuple) for r in register_nodes(server, fleet[first:first + per_turn]))
    return fleet


def _with_server(main) -> None:
    async def run():
        server = Server(ServerConfig(data_dir=None, num_schedulers=0))
        server.broker.cancel_hold = 0  # superseded evals canceled at once, the broker busy or not
        await server.start()
        try:
            await main(server)
        finally:
            await server.stop()

    asyncio.run(run())


def _node_evals(server: Server) -> list:
    return [e for e in server.state.snapshot().evals(None) if e.triggered_by == "node-update"]


def test_register_group_evals_are_stored_with_their_commands_index():
    async def main(server: Server) -> None:
        register_job(server, mock_system_job(id="sys-0"))
        before = server.state.latest_index
        fleet = [evolve(mock_node(), status="ready") for _ in range(3)]
        results = register_nodes(server, fleet)
        evals = _node_evals(server)
        # 3 node commands, then the evals' command: each register answered with its index
        assert {r[0] for r in results} == {before + 4}
        assert len(evals) == 3 and {(e.create_index, e.modify_index) for e in evals} == {(before + 4,) * 2}
        by_node = {e.node_id: e for e in evals}
        assert [by_node[n.id].node_modify_index for n in fleet] == [before + 1, before + 2, before + 3]
        # the broker holds them as stored, behind the job's register eval in flight
        assert server.broker.stats().total_pending == 3
        got, token = server.broker.try_dequeue(["system"])
        assert got.triggered_by == "job-register"
        server.broker.ack(got.id, token)  # the newest runs next, the others are stale
        got, token = server.broker.try_dequeue(["system"])
        assert got.node_id == fleet[-1].id and got == server.state.snapshot().eval_by_id(got.id)
        assert len(server.broker.take_cancelable()) == 2

    _with_server(main)


def test_a_stamp_that_does_not_match_the_state_is_corrected():
    async def main(server: Server) -> None:
        ev = Evaluation(id=generate_uuid(), job_id="web", type="service", status="pending", priority=50)
        first = server.state.apply(EvalUpsert(evals=[ev]))
        # an update stamped as if new: the state keeps the eval's create index
        wrong = evolve(ev, status="pending", create_index=first + 1, modify_index=first + 1)
        second = server.state.apply(EvalUpsert(evals=[wrong, evolve(ev, id=generate_uuid())]))
        stored = server.state.snapshot().eval_by_id(ev.id)
        assert (stored.create_index, stored.modify_index) == (first, second)

    _with_server(main)


def test_superseded_evals_are_canceled_a_chunk_per_loop_turn(monkeypatch):
    monkeypatch.setattr(server_mod, "CANCEL_CHUNK", 4)

    async def main(server: Server) -> None:
        fleet = await _storm(server, jobs=2, nodes=9, per_turn=9)
        got = [server.broker.try_dequeue(["system"]) for _ in range(2)]
        for ev, token in got:  # the jobs' register evals: the newest node eval runs next, 8 stale
            server.broker.ack(ev.id, token)
        index = server.state.latest_index
        server.run_timers()
        assert sum(e.status == "canceled" for e in _node_evals(server)) == 4  # one chunk now
        assert server.state.latest_index == index + 1
        for _ in range(10):
            await asyncio.sleep(0)
        evals = _node_evals(server)
        assert sum(e.status == "canceled" for e in evals) == 16
        assert server.state.latest_index == index + 4  # 16 in chunks of 4
        newest = {n.id: i for i, n in enumerate(fleet)}
        for job in ("sys-0", "sys-1"):
            mine = sorted((e for e in evals if e.job_id == job), key=lambda e: newest[e.node_id])
            assert [e.status for e in mine] == ["canceled"] * 8 + ["pending"]
            assert {e.status_description for e in mine[:-1]} == {
                "canceled after more recent eval was processed"}
            assert all(e.modify_index > e.create_index for e in mine[:-1])

    _with_server(main)


def test_chunks_not_written_when_leadership_is_lost(monkeypatch):
    monkeypatch.setattr(server_mod, "CANCEL_CHUNK", 2)

    async def main(server: Server) -> None:
        await _storm(server, jobs=1, nodes=6, per_turn=6)
        ev, token = server.broker.try_dequeue(["system"])
        server.broker.ack(ev.id, token)  # the job's register eval: 5 node evals stale
        server.run_timers()
        assert sum(e.status == "canceled" for e in _node_evals(server)) == 2
        await server.revoke_leadership()
        for _ in range(5):
            await asyncio.sleep(0)
        # the other three stay pending in the state: the next leader's broker has them
        assert sum(e.status == "canceled" for e in _node_evals(server)) == 2
        assert sum(e.status == "pending" for e in _node_evals(server)) == 4

    _with_server(main)


def test_a_complete_eval_cancels_the_jobs_blocked_eval_and_skips_a_job_without_one():
    async def main(server: Server) -> None:
        base = dict(job_id="web", type="service", priority=50)
        blocked = Evaluation(id=generate_uuid(), status="blocked", **base)
        done = Evaluation(id=generate_uuid(), status="pending", **base)
        canceled = Evaluation(id=generate_uuid(), status="canceled", **base)
        server.state.apply(EvalUpsert(evals=[blocked, done, canceled]))
        server.state.apply(EvalUpsert(evals=[evolve(done, status="complete")]))
        snap = server.state.snapshot()
        assert snap.eval_by_id(blocked.id).status == "canceled"
        assert snap.eval_by_id(blocked.id).status_description == f'evaluation "{done.id}" successful'
        # a completed eval of a job with no other live eval reads none of its evals
        other = Evaluation(id=generate_uuid(), status="pending", **dict(base, job_id="api"))
        server.state.apply(EvalUpsert(evals=[other]))
        reads = []
        from yurt.state import txn as txn_mod
        real = txn_mod.Txn.evals_by_job

        def counting(self, namespace, job_id):
            reads.append(job_id)
            return real(self, namespace, job_id)

        txn_mod.Txn.evals_by_job = counting
        try:
            server.state.apply(EvalUpsert(evals=[evolve(other, status="complete")]))
        finally:
            txn_mod.Txn.evals_by_job = real
        assert "api" not in reads
        assert server.state.snapshot().eval_by_id(other.id).status == "complete"

    _with_server(main)
