from yurt.client.config import ClientConfig
from yurt.client.fingerprint import build_node, fingerprint_cpu, fingerprint_kernel, fingerprint_os
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
