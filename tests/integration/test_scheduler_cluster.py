"""Issue 4 acceptance: one server and real client agents in dc1/dc2/dc3 with different node
classes and meta. Constraints on meta and class, a 60/40 spread over two datacenters, a system
job on every node (and on a node that joins later), and preemption of a low-priority job once
service preemption is switched on through `yurt operator scheduler set-config`."""

import collections
import re
import textwrap

import pytest

from .agents import wait_until, yurt

pytestmark = pytest.mark.timeout(180)

CLIENTS = (  # name, datacenter, node class, rack
    ("c1", "dc1", "small", "r1"),
    ("c2", "dc2", "large", "r2"),
    ("c3", "dc3", "large", "r3"),
)


def client_hcl(node_class: str, rack: str) -> str:
    return textwrap.dedent(f"""
        client {{
          node_class = "{node_class}"
          meta {{
            rack = "{rack}"
          }}
        }}
    """)


def job_hcl(job_id: str, body: str, *, count: int = 1, memory: int = 16, priority: int = 50,
            job_type: str = "service", datacenters: str = '["*"]', group_extra: str = "") -> str:
    count_line = "" if job_type == "system" else f"count = {count}"
    return textwrap.dedent(f"""
        job "{job_id}" {{
          type        = "{job_type}"
          priority    = {priority}
          datacenters = {datacenters}
        {textwrap.indent(body, "  ")}
          group "g" {{
            {count_line}
        {textwrap.indent(group_extra, "    ")}
            task "t" {{
              driver = "raw_exec"
              config {{
                command = "/bin/sleep"
                args    = ["600"]
              }}
              resources {{
                cpu    = 10
                memory = {memory}
              }}
            }}
          }}
        }}
    """)


def live_allocs(server, job_id: str) -> list[dict]:
    return [a for a in server.api(f"/v1/job/{job_id}/allocations")
            if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")]


def wait_allocs(server, job_id: str, count: int, timeout: float = 30) -> list[dict]:
    return wait_until(lambda: (allocs := live_allocs(server, job_id)) and len(allocs) == count and allocs,
                      timeout=timeout, what=f"{count} allocs of {job_id}")


def run(server, tmp_path, job_id: str, hcl: str, *args: str, check: bool = True):
    path = tmp_path / f"{job_id}.nomad.hcl"
    path.write_text(hcl)
    return yurt(server.address, "job", "run", "-detach", *args, str(path), check=check), path


def test_constraints_spread_system_jobs_and_preemption(cluster, tmp_path):
    server = cluster("srv", "server").start()
    servers = [f"127.0.0.1:{server.port}"]
    for name, dc, node_class, rack in CLIENTS:
        cluster(name, "client", servers=servers, datacenter=dc, extra_hcl=client_hcl(node_class, rack)).start()
    nodes = wait_until(lambda: len(server.api("/v1/nodes")) == 3 and server.api("/v1/nodes"), what="3 nodes")
    node_dc = {n["Name"]: n["Datacenter"] for n in nodes}
    assert node_dc == {"c1": "dc1", "c2": "dc2", "c3": "dc3"}
    node = server.api(f"/v1/node/{nodes[0]['ID']}")
    memory = node["NodeResources"]["Memory"]["MemoryMB"] - node["ReservedResources"]["Memory"]["MemoryMB"]

    # constraints on node class and meta: only c3 is a "large" node in rack r3
    constrained = job_hcl("pinned", "", count=2, group_extra=textwrap.dedent("""
        constraint {
          attribute = "${node.class}"
          value     = "large"
        }
        constraint {
          attribute = "${meta.rack}"
          value     = "r3"
        }
    """))
    run(server, tmp_path, "pinned", constrained)
    assert {a["NodeName"] for a in wait_allocs(server, "pinned", 2)} == {"c3"}

    # a 60/40 spread over dc1 and dc2 (5% of a node each: with one node per datacenter, bin
    # packing must outweigh the job anti-affinity for the targets to win, as in Nomad's scoring)
    spread = job_hcl("spread", textwrap.dedent("""
        spread {
          attribute = "${node.datacenter}"
          target "dc1" {
            percent = 60
          }
          target "dc2" {
            percent = 40
          }
        }
    """), count=10, memory=memory // 20, datacenters='["dc1", "dc2"]')
    run(server, tmp_path, "spread", spread)
    per_dc = collections.Counter(node_dc[a["NodeName"]] for a in wait_allocs(server, "spread", 10))
    assert per_dc == {"dc1": 6, "dc2": 4}, per_dc

    # a system job on every node, then on a node that joins later
    run(server, tmp_path, "sys", job_hcl("sys", "", job_type="system"))
    assert sorted(a["NodeName"] for a in wait_allocs(server, "sys", 3)) == ["c1", "c2", "c3"]
    cluster("c4", "client", servers=servers, datacenter="dc1", extra_hcl=client_hcl("small", "r4")).start()
    assert sorted(a["NodeName"] for a in wait_allocs(server, "sys", 4)) == ["c1", "c2", "c3", "c4"]

    # preemption: a low-priority job fills most of c2; a high-priority job pinned to c2
    pin_c2 = textwrap.dedent("""
        constraint {
          attribute = "${node.unique.name}"
          value     = "c2"
        }
    """)
    run(server, tmp_path, "low", job_hcl("low", "", memory=memory * 6 // 10, priority=20, group_extra=pin_c2))
    (low_alloc,) = wait_allocs(server, "low", 1)
    high = job_hcl("high", "", memory=memory * 6 // 10, priority=80, group_extra=pin_c2)
    path = tmp_path / "high.nomad.hcl"
    path.write_text(high)
    # off by default for service jobs: the plan cannot place it
    plan = yurt(server.address, "job", "plan", str(path), check=False)
    assert plan.returncode == 1 and "Failed to place all allocations" in plan.stdout, plan.stdout
    yurt(server.address, "operator", "scheduler", "set-config", "-preempt-service-scheduler=true")
    config = yurt(server.address, "operator", "scheduler", "get-config").stdout
    assert re.search(r"Preemption Service Scheduler\s+= true", config), config
    plan = yurt(server.address, "job", "plan", str(path), check=False)
    assert "Preemptions:" in plan.stdout and low_alloc["ID"] in plan.stdout, plan.stdout
    index = int(plan.stdout.split("Job Modify Index: ")[1].split()[0])
    # -check-index: a wrong index changes nothing, the planned one runs the job
    stale = yurt(server.address, "job", "run", "-detach", "-check-index", str(index + 5), str(path), check=False)
    assert stale.returncode == 1 and f"Enforcing job modify index {index + 5}: job does not exist" in stale.stderr
    yurt(server.address, "job", "run", "-detach", "-check-index", str(index), str(path))
    (high_alloc,) = wait_allocs(server, "high", 1)
    assert high_alloc["NodeName"] == "c2"
    evicted = server.api(f"/v1/allocation/{low_alloc['ID']}")
    assert evicted["DesiredStatus"] == "evict"
    assert evicted["DesiredDescription"] == f"Preempted by alloc ID {high_alloc['ID']}"
    assert evicted["PreemptedByAllocation"] == high_alloc["ID"]
    assert server.api(f"/v1/allocation/{high_alloc['ID']}")["PreemptedAllocations"] == [low_alloc["ID"]]
    # the preempted job was re-evaluated and now waits for room (blocked), as in Nomad
    evals = wait_until(lambda: (evs := server.api("/v1/job/low/evaluations"))
                       and any(e["TriggeredBy"] == "preemption" for e in evs)
                       and any(e["Status"] == "blocked" for e in evs) and evs,
                       what="a preemption eval and a blocked eval for the low job")
    assert any(e["TriggeredBy"] == "preemption" and e["Status"] == "complete" for e in evals), evals
