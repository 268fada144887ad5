"""Leader election over a real etcd cluster, in process: one leader, followers replicate, a
deposed leader cannot append, and losing etcd revokes leadership. Skipped without etcd unless
YURT_REQUIRE_ETCD=1."""

import asyncio
import time

import pytest

from yurt.server import Server, ServerConfig
from yurt.state.commands import SchedulerConfigSet
from yurt.state.etcd import NotLeaderError
from yurt.state.etcd.gateway import b64
from yurt.structs import SchedulerConfiguration

pytestmark = pytest.mark.timeout(90)
OVERSUBSCRIBE = SchedulerConfigSet(config=SchedulerConfiguration(memory_oversubscription_enabled=True))


def make_server(etcd_cluster, name: str) -> Server:
    return Server(ServerConfig(node_name=name, num_schedulers=1, state_backend="etcd",
                               etcd_endpoints=etcd_cluster.endpoints, etcd_prefix="/lead", etcd_lease_ttl=2))


async def until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_one_leader_followers_replicate_and_a_deposed_leader_cannot_write(etcd_cluster):
    servers = [make_server(etcd_cluster, n) for n in ("a", "b")]
    for s in servers:
        await s.start()
    try:
        await until(lambda: sum(s.leader for s in servers) == 1, what="one leader")
        leader = next(s for s in servers if s.leader)
        follower = next(s for s in servers if not s.leader)
        index = leader.state.apply(OVERSUBSCRIBE)
        await until(lambda: follower.state.latest_index == index, what="the follower to apply the write")
        assert follower.state.snapshot().scheduler_config().memory_oversubscription_enabled
        with pytest.raises(NotLeaderError):  # followers never write the log
            follower.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))

        # the leader key disappears (as when etcd expires the lease): the leader steps down at once
        # and the other server takes over; the old one's appends are refused by etcd
        await leader.leadership.gw.call("/v3/kv/deleterange", {"key": b64(leader.leadership.leader_key)})
        await until(lambda: follower.leader and not leader.leader, what="the other server to lead")
        new_index = follower.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))
        await until(lambda: leader.state.latest_index == new_index, what="the old leader to follow")
        with pytest.raises(NotLeaderError):
            leader.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))
        assert leader.state.latest_index == follower.state.latest_index == new_index

        # a server joining after a snapshot truncated the log restores snapshot + log
        assert follower.state.write_snapshot() == new_index
        last = follower.state.apply(OVERSUBSCRIBE)
        late = make_server(etcd_cluster, "c")
        servers.append(late)
        await late.start()
        await until(lambda: late.state.latest_index == last, what="the late server to catch up")
        assert not late.leader and late.state.snapshot().scheduler_config().memory_oversubscription_enabled

        # a follower that fell behind the log's truncation reloads the newest snapshot, then the rest
        replicate = next(t for t in late.leadership._tasks if t.get_name() == "ha-replicate")
        replicate.cancel()
        await asyncio.gather(replicate, return_exceptions=True)
        behind = late.state.latest_index
        for _ in range(2):
            follower.state.apply(SchedulerConfigSet(config=SchedulerConfiguration()))
        assert follower.state.write_snapshot() == behind + 2
        last = follower.state.apply(OVERSUBSCRIBE)
        assert late.state.latest_index == behind
        await late.leadership._catch_up()
        assert late.state.latest_index == last
        assert late.state.snapshot().scheduler_config().memory_oversubscription_enabled
    finally:
        for s in servers:
            await s.stop()


@pytest.mark.parametrize("down", [3, 2], ids=["etcd unreachable", "etcd without quorum"])
async def test_losing_etcd_revokes_leadership_within_the_lease(etcd_cluster, down):
    server = make_server(etcd_cluster, "solo")
    await server.start()
    try:
        await until(lambda: server.leader, what="leadership")
        for m in etcd_cluster.members[:down]:  # without quorum the last member answers nothing in time
            etcd_cluster.kill_member(m)
        await until(lambda: not server.leader, timeout=10, what="leadership revoked")
        assert server.workers == [] and server.applier is None
    finally:
        await server.stop()
