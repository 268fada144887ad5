"""A registration storm's node-update evals, as Nomad leaves them: one per node per system
job that may run there, all but the newest pending eval of each job canceled by the broker
once the job's eval in flight is acked, the newest one run."""

import asyncio

from yurt.server.config import ServerConfig
from yurt.server.endpoints.jobs import register_job
from yurt.server.endpoints.nodes import register_nodes
from yurt.server.server import Server
from yurt.structs import evolve
from yurt.testing.mock import mock_node, mock_system_job


def test_storm_evals_end_canceled_but_the_newest_of_each_job():
    async def main():
        server = Server(ServerConfig(data_dir=None, num_schedulers=0))
        server.broker.cancel_quiet = 0  # the timer pass cancels as soon as the broker is idle
        await server.start()
        try:
            for i in range(3):
                register_job(server, mock_system_job(id=f"sys-{i}"))
            nodes = [evolve(mock_node(), status="ready") for _ in range(12)]
            for first in range(0, 12, 4):  # three loop turns of registers
                assert all(isinstance(r, tuple) for r in register_nodes(server, nodes[first:first + 4]))
            snap = server.state.snapshot()
            node_evals = [e for e in snap.evals(None) if e.triggered_by == "node-update"]
            assert len(node_evals) == 36 and {e.status for e in node_evals} == {"pending"}
            for _ in range(2):  # each job's eval in flight is acked, then the leader's timer pass
                while (got := server.broker.try_dequeue(["system"])) is not None:
                    server.broker.ack(got[0].id, got[1])
                server.run_timers()
            snap = server.state.snapshot()
            by_job = {}
            for ev in snap.evals(None):
                if ev.triggered_by == "node-update":
                    by_job.setdefault(ev.job_id, []).append(ev)
            newest = {n.id: i for i, n in enumerate(nodes)}
            for job_id, evals in by_job.items():
                evals.sort(key=lambda e: (e.create_index, newest[e.node_id]))
                assert [e.status for e in evals] == ["canceled"] * 11 + ["pending"], job_id
                assert evals[-1].node_id == nodes[-1].id
                assert {e.status_description for e in evals[:-1]} == {
                    "canceled after more recent eval was processed"}
                assert all(e.modify_index > e.create_index for e in evals[:-1])
            assert server.broker.stats().total_pending == 0
        finally:
            await server.stop()

    asyncio.run(main())
