"""host_network ports and reserved ports: feasibility, the address a port lands on, the
task env it yields, and the client fingerprint behind it."""

from yurt.client.devices import (
    node_networks,
    parse_host_networks,
    with_devices_and_networks,
)
from yurt.client.taskenv import _port_env
from yurt.structs import NetworkResource, Port, evolve
from yurt.structs.node import (
    NodeNetworkAddress,
    NodeNetworkResource,
    NodeReservedNetworkResources,
)
from yurt.testing.harness import Harness
from yurt.testing.mock import mock_node

from .helpers import placed, run_job, small_job

INTERFACES = {"lo": ["127.0.0.1", "::1"], "eth0": ["192.168.0.100"], "eth1": ["10.1.2.3", "10.9.9.9"]}


def hn_node(aliases: dict[str, str], reserved: str = "22", min_port: int = 20000, max_port: int = 32000):
    node = mock_node()
    addrs = [NodeNetworkAddress(alias="default", address="192.168.0.100")]
    addrs += [NodeNetworkAddress(alias=a, address=ip) for a, ip in aliases.items()]
    res = evolve(node.node_resources, node_networks=[NodeNetworkResource(device="eth0", addresses=addrs)],
                 min_dynamic_port=min_port, max_dynamic_port=max_port)
    rr = evolve(node.reserved_resources, networks=NodeReservedNetworkResources(reserved_host_ports=reserved))
    return evolve(node, node_resources=res, reserved_resources=rr)


def port_job(*ports: Port, count: int = 1, **fields):
    job = small_job(count, **fields)
    tg = job.task_groups[0]
    static = [p for p in ports if p.value]
    dynamic = [p for p in ports if not p.value]
    net = NetworkResource(mode="host", reserved_ports=static or None, dynamic_ports=dynamic or None)
    return evolve(job, task_groups=[evolve(tg, networks=[net])])


def mapping(alloc, label):
    return next(m for m in alloc.allocated_resources.shared.ports if m.label == label)


def test_port_lands_on_host_network_address():
    h = Harness()
    h.add_node(hn_node({"public": "10.1.2.3"}))
    run_job(h, port_job(Port(label="http", host_network="public"), Port(label="admin")))
    [alloc] = placed(h)
    assert mapping(alloc, "http").host_ip == "10.1.2.3"
    assert mapping(alloc, "admin").host_ip == "192.168.0.100"  # default network: the node address


def test_nodes_without_the_host_network_are_filtered_with_reason():
    h = Harness()
    h.add_node(hn_node({}))
    h.add_node(hn_node({"private": "10.9.9.9"}))
    good = h.add_node(hn_node({"public": "10.1.2.3"}))
    run_job(h, port_job(Port(label="http", host_network="public"), count=2))
    assert {a.node_id for a in placed(h)} == {good.id}
    h2 = Harness()
    h2.add_node(hn_node({"private": "10.9.9.9"}))
    run_job(h2, port_job(Port(label="http", host_network="public")))
    reason = h2.updated_evals[-1].failed_tg_allocs["web"].failure_reasons[0]
    assert '1 missing host network "public" for port "http"' in reason, reason


def test_static_port_on_host_network():
    h = Harness()
    h.add_node(hn_node({"public": "10.1.2.3"}))
    run_job(h, port_job(Port(label="http", value=8080, host_network="public")))
    m = mapping(placed(h)[0], "http")
    assert (m.host_ip, m.value) == ("10.1.2.3", 8080)


def test_default_ports_need_no_host_network():
    h = Harness()
    node = h.add_node(hn_node({}))
    run_job(h, port_job(Port(label="http")))
    assert [a.node_id for a in placed(h)] == [node.id]


def test_reserved_ports_are_never_handed_out():
    h = Harness()
    h.add_node(hn_node({}, reserved="20000-20095", min_port=20000, max_port=20099))
    run_job(h, port_job(Port(label="a"), Port(label="b"), count=2))
    values = sorted(m.value for a in placed(h) for m in a.allocated_resources.shared.ports)
    assert values == [20096, 20097, 20098, 20099]
    run_job(h, port_job(Port(label="c"), id="more"))
    reason = h.updated_evals[-1].failed_tg_allocs["web"].failure_reasons[0]
    assert "exhausted network: dynamic port selection failed" in reason


def test_static_port_on_a_reserved_port_is_exhausted():
    h = Harness()
    h.add_node(hn_node({"public": "10.1.2.3"}, reserved="22,80,8000-8100"))
    run_job(h, port_job(Port(label="http", value=8050, host_network="public")))
    reason = h.updated_evals[-1].failed_tg_allocs["web"].failure_reasons[0]
    assert "exhausted network: reserved port collision" in reason, reason


def test_task_env_uses_the_host_network_address():
    h = Harness()
    h.add_node(hn_node({"public": "10.1.2.3"}))
    job = port_job(Port(label="http", host_network="public"))
    run_job(h, job)
    alloc = placed(h)[0]
    env = _port_env(alloc, job.task_groups[0].tasks[0])
    port = mapping(alloc, "http").value
    assert env["NOMAD_IP_http"] == "10.1.2.3"
    assert env["NOMAD_ADDR_http"] == f"10.1.2.3:{port}"


def test_fingerprint_host_networks_by_cidr_and_interface():
    hns = parse_host_networks({"public": {"cidr": "10.1.0.0/16", "reserved_ports": "9000"},
                               "loop": {"interface": "lo"}})
    nets = node_networks("192.168.0.100", hns, INTERFACES, reserved_ports="22")
    addrs = {(n.device, a.alias, a.address, a.reserved_ports) for n in nets for a in n.addresses}
    assert addrs == {("eth0", "default", "192.168.0.100", "22"), ("eth1", "public", "10.1.2.3", "22,9000"),
                     ("lo", "loop", "127.0.0.1", "22"), ("lo", "loop", "::1", "22")}
    node = with_devices_and_networks(mock_node(), [], hns, "22", interfaces=INTERFACES)
    assert sorted(node.host_networks) == ["loop", "public"]
    assert node.reserved_resources.networks.reserved_host_ports == "22,9000"


def test_host_network_config_errors_name_the_field():
    for body, text in (({"cidr": "10.0.0/8"}, "invalid cidr"), ({}, "one of cidr or interface"),
                       ({"interface": "lo", "mtu": 1}, "unknown key 'mtu'"),
                       ({"interface": "lo", "reserved_ports": "80-70"}, "invalid port range")):
        try:
            parse_host_networks({"x": body})
        except ValueError as exc:
            assert 'host_network "x"' in str(exc) and text in str(exc), str(exc)
        else:
            raise AssertionError(f"{body} accepted")
