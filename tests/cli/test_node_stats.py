"""`yurt node status -stats`: Nomad's CPU, Memory and Disk Stats blocks."""

from cli_fakes import NODE_ID, alloc, node, node_stub

HOST = {
    "Uptime": 10, "CPUTicksConsumed": 250.6,
    "Memory": {"Total": 8 * 2**30, "Available": 6 * 2**30, "Used": 2 * 2**30, "Free": 5 * 2**30},
    "CPU": [{"CPU": "cpu0", "User": 12.5, "System": 2.25, "Idle": 85.25, "Total": 14.75},
            {"CPU": "cpu1", "User": 1.0, "System": 0.0, "Idle": 99.0, "Total": 1.0}],
    "DiskStats": [{"Device": "/dev/sda1", "Mountpoint": "/", "Size": 10 * 2**30, "Used": 2**30,
                   "Available": 9 * 2**30, "UsedPercent": 10.0, "InodesUsedPercent": 1234.5}],
}


def serve(fake):
    fake.on("GET", "/v1/nodes", [node_stub()])
    fake.on("GET", f"/v1/node/{NODE_ID}", node(Attributes={"unique.storage.volume": "/dev/sda1"}))
    fake.on("GET", f"/v1/node/{NODE_ID}/allocations", [alloc(ClientStatus="complete")])
    fake.on("GET", "/v1/client/stats", HOST)


def test_node_status_stats_blocks(fake, run_cli):
    serve(fake)
    res = run_cli("node", "status", "-stats", NODE_ID)
    assert res.code == 0, res.err
    expected = """
CPU Stats
CPU    = cpu0
User   = 12.50%
System = 2.25%
Idle   = 85.25%

CPU    = cpu1
User   = 1.00%
System = 0.00%
Idle   = 99.00%

Memory Stats
Total     = 8.0 GiB
Available = 6.0 GiB
Used      = 2.0 GiB
Free      = 5.0 GiB

Disk Stats
Device         = /dev/sda1
MountPoint     = /
Size           = 10 GiB
Used           = 1.0 GiB
Available      = 9.0 GiB
Used Percent   = 10.00%
Inodes Percent = 1,234.50%

Allocations
"""
    assert expected in res.out
    assert res.out.index("Host Resource Utilization") < res.out.index("CPU Stats")


def test_node_status_without_stats_flag_has_no_blocks(fake, run_cli):
    serve(fake)
    res = run_cli("node", "status", NODE_ID)
    assert "CPU Stats" not in res.out and "Disk Stats" not in res.out
