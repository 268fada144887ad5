from yurt.client.config import ClientConfig
from yurt.client.fingerprint import (
    build_node,
    fingerprint_cpu,
    fingerprint_kernel,
    fingerprint_os,
)
from yurt.drivers import builtin_drivers


def test_each_fingerprinter_reports_its_attributes():
    assert {"kernel.name", "kernel.arch", "kernel.version"} <= set(fingerprint_kernel())
    assert "SIGTERM" in fingerprint_os()["os.signals"].split(",")
    cpu = fingerprint_cpu(reserved_cpu=100)
    assert int(cpu["cpu.totalcompute"]) == int(cpu["cpu.frequency"]) * int(cpu["cpu.numcores"])
    assert int(cpu["cpu.usablecompute"]) == int(cpu["cpu.totalcompute"]) - 100


def test_build_node(tmp_path):
    cfg = ClientConfig(
        data_dir=str(tmp_path), node_name="n1", node_class="web", meta={"rack": "r1"},
        http_advertise="127.0.0.1:4646", reserved_cpu=200, reserved_memory=256, raw_exec_enabled=True,
    )
    cfg.load_identity()
    node = build_node(cfg, builtin_drivers(raw_exec_enabled=True))
    attrs = node.attributes
    assert node.id == cfg.node_id and node.name == "n1" and node.node_class == "web" and node.meta == {"rack": "r1"}
    assert node.http_addr == "127.0.0.1:4646" and attrs["nomad.advertise.address"] == "127.0.0.1:4646"
    assert attrs["unique.network.ip-address"] == "127.0.0.1"
    assert attrs["driver.raw_exec"] == "1" and node.drivers["raw_exec"].healthy
    for key in ("memory.totalbytes", "unique.hostname", "unique.storage.volume", "unique.storage.bytestotal",
                "unique.storage.bytesfree", "nomad.version", "cpu.modelname"):
        assert attrs[key], key
    assert node.node_resources.cpu.cpu_shares == int(attrs["cpu.totalcompute"])
    assert node.node_resources.memory.memory_mb == int(attrs["memory.totalbytes"]) // 2**20
    assert node.node_resources.disk.disk_mb > 0
    assert node.reserved_resources.cpu.cpu_shares == 200 and node.reserved_resources.memory.memory_mb == 256


def test_disabled_raw_exec_is_not_advertised(tmp_path):
    cfg = ClientConfig(data_dir=str(tmp_path))
    cfg.load_identity()
    node = build_node(cfg, builtin_drivers(raw_exec_enabled=False))
    assert "driver.raw_exec" not in node.attributes
    assert node.drivers["raw_exec"].detected is False


def test_client_totals_and_reserved_override_the_host(tmp_path):
    """`cpu_total_compute`, `memory_total_mb` and `reserved { ... }` from the agent config reach
    the node's attributes and resources (Nomad's cpu and memory fingerprinters)."""
    from yurt.agent.config import AgentConfig, load_files
    from yurt.agent.wiring import build_client_agent

    conf = tmp_path / "client.hcl"
    conf.write_text(
        'data_dir = "%s"\nclient {\n  enabled = true\n  cpu_total_compute = 12345\n  memory_total_mb = 777\n'
        '  gc_interval = "5s"\n  gc_max_allocs = 7\n  options = { "driver.denylist" = "docker" }\n'
        '  reserved {\n    cpu = 100\n    memory = 64\n    disk = 10\n    reserved_ports = "22,8000-8002"\n  }\n}\n'
        % tmp_path
    )
    cfg = load_files(AgentConfig(), [str(conf)])
    agent = build_client_agent(cfg)
    cc = agent.config
    assert (cc.cpu_total_compute, cc.memory_total_mb, cc.gc_interval, cc.gc_max_allocs) == (12345, 777, 5.0, 7)
    cc.load_identity()
    node = build_node(cc, {})
    assert node.attributes["cpu.totalcompute"] == "12345"
    assert node.attributes["cpu.usablecompute"] == "12245"
    assert node.attributes["memory.totalbytes"] == str(777 * 2**20)
    assert node.node_resources.cpu.cpu_shares == 12345 and node.node_resources.memory.memory_mb == 777
    reserved = node.reserved_resources
    assert (reserved.cpu.cpu_shares, reserved.memory.memory_mb, reserved.disk.disk_mb) == (100, 64, 10)
    assert reserved.networks.reserved_host_ports == "22,8000-8002"

    from yurt.structs.resources import node_reserved_ports

    assert node_reserved_ports(node) == {22, 8000, 8001, 8002}


def test_bad_reserved_ports_is_a_config_error(tmp_path):
    import pytest

    from yurt.agent.config import AgentConfig, AgentConfigError, load_files

    conf = tmp_path / "client.hcl"
    conf.write_text('client {\n  enabled = true\n  options = { "driver.denylist" = "docker" }\n  reserved {\n    reserved_ports = "80-x"\n  }\n}\n')
    with pytest.raises(AgentConfigError, match=r"client.hcl:5: client.reserved.reserved_ports: invalid port range '80-x'"):
        load_files(AgentConfig(data_dir=str(tmp_path)), [str(conf)])
