"""HA: three `yurt agent -server` processes whose log lives in a real 3-member etcd cluster, and
one client. Killing the leader (kill -9) hands leadership to another server with the same state;
killing one etcd member changes nothing. Skipped without etcd unless YURT_REQUIRE_ETCD=1."""

import json

import httpx
import pytest

from .agents import free_port, wait_until, yurt
from .test_cluster import sized_job

pytestmark = pytest.mark.timeout(180)


def leaders(servers) -> set[str]:
    """The servers that say they lead (by their own /v1/agent/self)."""
    found = set()
    for s in servers:
        try:
            if s.api("/v1/agent/self")["stats"]["nomad"]["leader"] == "true":
                found.add(s.name)
        except (httpx.HTTPError, AssertionError):
            pass
    return found


def running(server, job_id: str) -> list[dict]:
    return [a for a in server.api(f"/v1/job/{job_id}/allocations") if a["ClientStatus"] == "running"]


def test_leader_failover_keeps_the_state_and_the_cluster_working(cluster, etcd_cluster, tmp_path):
    ha = (f'server {{\n  state_backend = "etcd"\n  etcd_endpoints = {json.dumps(etcd_cluster.endpoints)}\n'
          f'  etcd_prefix = "/yurt-test"\n  etcd_lease_ttl = "3s"\n}}\n')
    # distinct advertised RPC ports: /v1/status/leader and `server members` tell the servers apart
    servers = [cluster(f"s{i}", "server", extra_hcl=ha + f"ports {{ rpc = {free_port()} }}\n") for i in range(3)]
    for s in servers:
        s.start(wait=False)
    for s in servers:
        wait_until(s.ready, timeout=30, what=f"server {s.name}")
    leader_name = wait_until(lambda: len(leaders(servers)) == 1 and leaders(servers).pop(), what="one leader")
    rpc_ports = {s.name: s.api("/v1/agent/self")["config"]["Ports"]["RPC"] for s in servers}
    assert len(set(rpc_ports.values())) == 3
    # every server agrees on the cluster: peers, members and the raft configuration
    for s in servers:
        wait_until(lambda s=s: len(s.api("/v1/status/peers")) == 3, what=f"3 peers seen by {s.name}")
        members = sorted(m["Name"] for m in s.api("/v1/agent/members")["Members"])
        assert members == ["s0.global", "s1.global", "s2.global"]
        config = s.api("/v1/operator/raft/configuration")["Servers"]
        assert [c["ID"] for c in config if c["Leader"]] == [leader_name]
        assert s.api("/v1/status/leader") == f"127.0.0.1:{rpc_ports[leader_name]}"
    members = yurt(servers[0].address, "server", "members").stdout.splitlines()[1:]
    assert sorted(line.split()[0] for line in members if line.split()[4] == "true") == [f"{leader_name}.global"]

    by_name = {s.name: s for s in servers}
    # the client talks to the leader first: killing it makes the client fail over too
    order = [by_name[leader_name]] + [s for s in servers if s.name != leader_name]
    client = cluster("c0", "client", servers=[f"127.0.0.1:{s.port}" for s in order]).start()
    follower = next(s for s in servers if s.name != leader_name)
    wait_until(lambda: len(follower.api("/v1/nodes")) == 1, what="the node registered")

    job = tmp_path / "web.nomad.hcl"
    job.write_text(sized_job("web", 2, 32))
    yurt(follower.address, "job", "run", "-detach", str(job))  # a write through a follower
    wait_until(lambda: len(running(follower, "web")) == 2, timeout=60, what="2 running allocs")
    before = {a["ID"]: (a["CreateIndex"], a["ModifyIndex"]) for a in follower.api("/v1/job/web/allocations")}
    job_index = follower.api("/v1/job/web")["JobModifyIndex"]

    old = by_name[leader_name]
    old.kill()  # kill -9
    rest = [s for s in servers if s is not old]
    new_leader = wait_until(lambda: len(leaders(rest)) == 1 and leaders(rest).pop(), timeout=30,
                            what="a new leader")
    assert new_leader != leader_name
    for s in rest:
        wait_until(lambda s=s: s.api("/v1/status/leader") != "", what=f"{s.name} knows the leader")
        after = {a["ID"]: (a["CreateIndex"], a["ModifyIndex"]) for a in s.api("/v1/job/web/allocations")}
        assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
        assert s.api("/v1/job/web")["JobModifyIndex"] == job_index
    assert len(running(by_name[new_leader], "web")) == 2

    # a new job registered through either remaining server is placed
    other = next(s for s in rest if s.name != new_leader)
    job2 = tmp_path / "api.nomad.hcl"
    job2.write_text(sized_job("api", 1, 32))
    yurt(other.address, "job", "run", "-detach", str(job2))
    wait_until(lambda: len(running(other, "api")) == 1, timeout=60, what="the new job placed after failover")

    # the old leader comes back as a follower and catches up
    old.start()
    wait_until(lambda: len(running(old, "api")) == 1 and len(running(old, "web")) == 2, timeout=30,
               what="the restarted server caught up")
    assert leaders(servers) == {new_leader}
    assert old.api("/v1/status/leader") == by_name[new_leader].api("/v1/status/leader")

    # one etcd member down: writes and placement still work
    etcd_cluster.kill_member(etcd_cluster.members[0])
    job3 = tmp_path / "db.nomad.hcl"
    job3.write_text(sized_job("db", 1, 32))
    yurt(old.address, "job", "run", "-detach", str(job3))
    wait_until(lambda: len(running(old, "db")) == 1, timeout=60, what="placement with 2 of 3 etcd")
    # the etcd election may outlast a lease renewal (the leader then steps down): one leader either way
    wait_until(lambda: len(leaders(servers)) == 1, what="one leader with 2 of 3 etcd")
    client.kill()
