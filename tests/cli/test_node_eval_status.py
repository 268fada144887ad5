"""`node status`, `eval status`, `eval list` and the generic `status` lookup."""

from cli_fakes import (ALLOC_ID, EVAL_ID, JOB_ID, NODE_ID, alloc, alloc_stub, evaluation, job, job_stub, node,
                       node_stub, summary)


def by_prefix(items):
    return lambda r: [i for i in items if i["ID"].startswith(r.params.get("prefix", ""))]


def serve_node(fake):
    fake.on("GET", "/v1/nodes", by_prefix([node_stub()]))
    fake.on("GET", f"/v1/node/{NODE_ID}", node())
    fake.on("GET", f"/v1/node/{NODE_ID}/allocations", [alloc()])


def test_node_list(fake, run_cli):
    fake.on("GET", "/v1/nodes", [node_stub(), node_stub("0a0b0c0d-1", Name="node-2", Status="down", Drain=True)])
    res = run_cli("node", "status")
    assert res.out.splitlines() == [
        "ID        Node Pool  DC   Name    Class   Drain  Eligibility  Status",
        "f1e2d3c4  default    dc1  node-1  <none>  false  eligible     ready",
        "0a0b0c0d  default    dc1  node-2  <none>  true   eligible     down",
    ]


def test_node_list_verbose_and_allocs_columns(fake, run_cli):
    fake.on("GET", "/v1/nodes", [node_stub()])
    fake.on("GET", f"/v1/node/{NODE_ID}/allocations", [alloc(), alloc(ClientStatus="complete")])
    res = run_cli("node", "status", "-verbose", "-allocs")
    header, row = res.out.splitlines()
    assert header.startswith("ID" + " " * 36 + "Node Pool")
    assert "Address" in header and header.endswith("Running Allocs")
    assert row.startswith(NODE_ID) and "10.0.0.5" in row and row.endswith("1")


def test_node_list_empty(fake, run_cli):
    fake.on("GET", "/v1/nodes", [])
    assert run_cli("node", "status").out == "No nodes registered\n"


def test_node_detail(fake, run_cli):
    serve_node(fake)
    fake.on("GET", "/v1/client/stats", {"Uptime": 3725})
    res = run_cli("node", "status", NODE_ID[:4])
    assert res.code == 0, res.err
    out = res.out
    assert out.startswith(f"ID              = {NODE_ID}\nName            = node-1\n")
    assert "Uptime          = 1h2m5s\n" in out
    assert "Driver Status   = docker,exec (unhealthy)\n" in out
    assert "\nNode Events\nTime                  Subsystem  Message\n2023-11-14T22:00:00Z  Cluster    Node registered\n" in out
    assert "\nAllocated Resources\nCPU           Memory           Disk            Alloc Count\n" \
           "100/4000 MHz  300 MiB/7.8 GiB  300 MiB/10 GiB  1\n" in out
    assert f"\nAllocations\nID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n" \
           f"{ALLOC_ID[:8]}  {NODE_ID[:8]}  cache       0        run      running  5m ago   5s ago\n" in out
    assert "Attributes" not in out


def test_node_detail_verbose_shows_attributes_and_drivers(fake, run_cli):
    serve_node(fake)
    res = run_cli("node", "status", "-verbose", NODE_ID)
    assert "\nAttributes\ncpu.arch    = amd64\nkernel.name = linux\nos.name     = ubuntu\n" in res.out
    assert "\nMeta\nrack = r1\n" in res.out
    assert "\nDrivers\nDriver  Detected  Healthy  Message     Time\n" in res.out


def test_node_prefix_errors(fake, run_cli):
    fake.on("GET", "/v1/nodes", [node_stub(), node_stub(NODE_ID[:6] + "99-0000")])
    res = run_cli("node", "status", "f1e2")
    assert res.code == 1 and res.err.startswith("Prefix matched multiple nodes\n\nID        DC   Name")
    assert run_cli("node", "status", "f").err == "Identifier must contain at least two characters.\n"
    fake.on("GET", "/v1/nodes", [])
    assert run_cli("node", "status", "abcd").err == 'No node(s) with prefix "abcd" found\n'


def test_node_self(fake, run_cli):
    serve_node(fake)
    fake.on("GET", "/v1/agent/self", {"stats": {"client": {"node_id": NODE_ID}}})
    res = run_cli("node", "status", "-self", "-short")
    assert res.code == 0, res.err
    assert "Drivers         = docker\n" in res.out


def test_eval_status(fake, run_cli):
    fake.on("GET", "/v1/evaluations", by_prefix([evaluation()]))
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation())
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [alloc_stub()])
    res = run_cli("eval", "status", EVAL_ID[:6])
    assert res.code == 0, res.err
    assert res.out.splitlines()[:4] == [
        f"ID                 = {EVAL_ID[:8]}", "Create Time        = 1m2s ago", "Modify Time        = 1m1s ago",
        "Status             = complete"]
    assert "Placement Failures = false\n" in res.out
    assert "\nPlaced Allocations\nID" in res.out


def test_eval_status_failed_placements(fake, run_cli):
    failed = evaluation(FailedTGAllocs={"cache": {"NodesEvaluated": 0, "FailureReasons": ["no node has 9 GB"]}})
    fake.on("GET", "/v1/evaluations", [failed])
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", failed)
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    res = run_cli("eval", "status", EVAL_ID)
    assert "Placement Failures = true\n" in res.out
    assert ('\nFailed Placements\nTask Group "cache" (failed to place 1 allocation):\n'
            "  * No nodes were eligible for evaluation\n  * no node has 9 GB\n") in res.out


def test_eval_list(fake, run_cli):
    fake.on("GET", "/v1/evaluations", [evaluation(), evaluation("7777aaaa-0", status="blocked", JobID="other")])
    res = run_cli("eval", "list")
    assert res.out.splitlines() == [
        "ID        Priority  Triggered By  Job ID   Namespace  Node ID  Status    Placement Failures",
        f"{EVAL_ID[:8]}  50        job-register  example  default    <none>   complete  false",
        "7777aaaa  50        job-register  other    default    <none>   blocked   N/A - In Progress",
    ]
    assert run_cli("eval", "list", "-job", "other").out.count("\n") == 2


def test_generic_status_dispatches_by_prefix(fake, run_cli):
    fake.on("GET", "/v1/jobs", by_prefix([job_stub()]))
    fake.on("GET", "/v1/allocations", by_prefix([alloc_stub()]))
    fake.on("GET", "/v1/evaluations", by_prefix([evaluation()]))
    fake.on("GET", "/v1/nodes", by_prefix([node_stub()]))
    fake.on("GET", f"/v1/job/{JOB_ID}", job())
    fake.on("GET", f"/v1/job/{JOB_ID}/summary", summary())
    fake.on("GET", f"/v1/job/{JOB_ID}/allocations", [])
    fake.on("GET", f"/v1/job/{JOB_ID}/evaluations", [])
    res = run_cli("status", "exa")
    assert res.code == 0, res.err
    assert res.out.startswith("ID            = example\n")
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation())
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    assert run_cli("status", EVAL_ID[:4]).out.startswith(f"ID                 = {EVAL_ID[:8]}")


def test_generic_status_ambiguous_and_unknown(fake, run_cli):
    fake.on("GET", "/v1/jobs", [])
    fake.on("GET", "/v1/allocations", [alloc_stub()])
    fake.on("GET", "/v1/evaluations", [evaluation(ALLOC_ID[:4] + "ffff")])
    fake.on("GET", "/v1/nodes", [])
    res = run_cli("status", "5a6b")
    assert res.code == 1
    assert res.err == (f'Multiple matches found for id "5a6b"\n\nAllocs:\n{ALLOC_ID}\n\nEvals:\n'
                       f"{ALLOC_ID[:4]}ffff\n")
    res = run_cli("status", "zz")
    assert (res.code, res.err) == (1, 'Unable to resolve ID: "zz"\n')


def test_node_detail_utilization_tables(fake, run_cli):
    serve_node(fake)
    fake.on("GET", f"/v1/node/{NODE_ID}", node(Attributes={"unique.storage.volume": "/dev/sda1"}))
    fake.on("GET", "/v1/client/stats", {"Uptime": 10, "CPUTicksConsumed": 250.6,
                                        "Memory": {"Used": 2 * 2**30, "Total": 8 * 2**30},
                                        "DiskStats": [{"Device": "/dev/sda1", "Used": 2**30, "Size": 10 * 2**30}]})
    fake.on("GET", f"/v1/client/allocation/{ALLOC_ID}/stats",
            {"ResourceUsage": {"CpuStats": {"TotalTicks": 42.9}, "MemoryStats": {"RSS": 50 * 2**20}}})
    res = run_cli("node", "status", NODE_ID)
    assert res.code == 0, res.err
    assert "\nAllocation Resource Utilization\nCPU          Memory\n42/4000 MHz  50 MiB/7.8 GiB\n" in res.out
    assert "\nHost Resource Utilization\nCPU           Memory           Disk\n" \
           "250/4000 MHz  2.0 GiB/8.0 GiB  1.0 GiB/10 GiB\n" in res.out


def test_node_detail_without_host_stats(fake, run_cli):
    serve_node(fake)
    res = run_cli("node", "status", NODE_ID)
    assert res.code == 0
    assert "Host Resource Utilization" not in res.out
    assert res.err.splitlines() == ["error fetching node stats: Unexpected response code: 404 (Not Found)",
                                    "error fetching node stats: actual resource usage not present"]
