"""Issue 2, step 6: a server and three client agents on loopback; placement follows capacity."""

import collections
import textwrap

import pytest

from .agents import wait_until, yurt

pytestmark = pytest.mark.timeout(240)


def sized_job(job_id: str, count: int, memory_mb: int) -> str:
    return textwrap.dedent(f"""
        job "{job_id}" {{
          group "g" {{
            count = {count}
            task "t" {{
              driver = "raw_exec"
              config {{
                command = "/bin/sleep"
                args    = ["600"]
              }}
              resources {{
                cpu    = 20
                memory = {memory_mb}
              }}
            }}
          }}
        }}
    """)


def test_three_clients_count_6_lands_by_capacity_and_the_7th_is_blocked(cluster, tmp_path):
    server = cluster("srv", "server").start()
    servers = [f"127.0.0.1:{server.port}"]
    clients = [cluster(f"c{i}", "client", servers=servers).start() for i in range(3)]
    nodes = wait_until(lambda: len(server.api("/v1/nodes")) == 3 and server.api("/v1/nodes"), what="3 nodes")
    names = sorted(n["Name"] for n in nodes)
    assert names == ["c0", "c1", "c2"]
    # a client-only agent forwards the rest of /v1 to its server, so NOMAD_ADDR may point at it
    assert sorted(n["Name"] for n in clients[0].api("/v1/nodes")) == names
    node = server.api(f"/v1/node/{nodes[0]['ID']}")
    memory = node["NodeResources"]["Memory"]["MemoryMB"] - node["ReservedResources"]["Memory"]["MemoryMB"]
    per_alloc = int(memory * 0.4)  # two fit on a node, three do not

    job = tmp_path / "big.nomad.hcl"
    job.write_text(sized_job("big", 6, per_alloc))
    yurt(server.address, "job", "run", str(job))
    allocs = wait_until(
        lambda: [a for a in server.api("/v1/job/big/allocations") if a["ClientStatus"] == "running"]
        if len([a for a in server.api("/v1/job/big/allocations") if a["ClientStatus"] == "running"]) == 6 else None,
        timeout=60, what="6 running allocs")
    per_node = collections.Counter(a["NodeName"] for a in allocs)
    assert sorted(per_node.values()) == [2, 2, 2], per_node

    job.write_text(sized_job("big", 7, per_alloc))
    result = yurt(server.address, "job", "run", str(job), check=False)
    assert result.returncode == 2, result.stdout
    status = yurt(server.address, "job", "status", "big").stdout
    assert "Placement Failure" in status and "memory" in status, status
    for c in clients:
        c.kill()
