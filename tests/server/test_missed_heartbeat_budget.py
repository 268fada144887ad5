"""The leader marks nodes that missed their heartbeat a budget of loop time at a time: a
silent fleet (thousands of nodes, each with evals for every job it runs) must not hold the
event loop, and signals with it, until every node is marked."""

import pytest

from yurt.server import FakeClock, Server, ServerConfig
from yurt.server.endpoints.nodes import register_node
from yurt.testing.mock import mock_node


@pytest.fixture
async def server():
    srv = Server(ServerConfig(num_schedulers=0, min_heartbeat_ttl=5.0, heartbeat_grace=5.0),
                 clock=FakeClock())
    await srv.start()
    yield srv
    await srv.stop()


def silent_fleet(server, size):
    """`size` registered nodes, all past their heartbeat deadline."""
    nodes = [mock_node() for _ in range(size)]
    for node in nodes:
        register_node(server, node)
    server.clock.advance(60.0)
    return nodes


def statuses(server, nodes):
    snap = server.state.snapshot()
    return [snap.node_by_id(n.id).status for n in nodes]


async def test_a_pass_over_its_budget_leaves_the_rest_for_the_next(server):
    nodes = silent_fleet(server, 5)
    server.run_timers(missed_budget_s=0.0)  # a spent budget: one node per pass
    assert sorted(statuses(server, nodes)).count("down") == 1
    server.run_timers(missed_budget_s=0.0)
    assert sorted(statuses(server, nodes)).count("down") == 2
    server.run_timers()  # no budget: all that are left
    assert statuses(server, nodes) == ["down"] * 5


async def test_a_node_that_heartbeats_while_waiting_is_left_alone(server):
    nodes = silent_fleet(server, 3)
    server.run_timers(missed_budget_s=0.0)
    down = [n for n, s in zip(nodes, statuses(server, nodes)) if s == "down"]
    waiting = [n for n in nodes if n not in down]
    assert len(down) == 1 and len(waiting) == 2
    server.heartbeats.reset(waiting[0].id)  # what a heartbeat does: tracked again
    server.run_timers()
    assert server.state.snapshot().node_by_id(waiting[0].id).status != "down"
    assert server.state.snapshot().node_by_id(waiting[1].id).status == "down"


async def test_losing_leadership_forgets_the_waiting_nodes(server):
    nodes = silent_fleet(server, 3)
    server.run_timers(missed_budget_s=0.0)
    await server.revoke_leadership()
    assert not server._missed
