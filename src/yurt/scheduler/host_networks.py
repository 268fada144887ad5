"""`host_network`: ports placed on a named network of the client.

A client declares `host_network "name" { cidr | interface, reserved_ports }`; its
fingerprint lists the matching addresses in `NodeResources.NodeNetworks[].Addresses` with
`Alias = name`. A group port with `host_network = "name"` can only go to a node having an
address of that alias (else "missing host network \"name\" for port \"x\""), and its
`HostIP` (hence NOMAD_IP_x / NOMAD_ADDR_x) is that address. Ports stay unique node-wide.
"""

from __future__ import annotations

from yurt.structs import NetworkResource, Node, evolve

DEFAULT = "default"


def host_network_addresses(node: Node) -> dict[str, str]:
    """alias -> first address of that host network on the node."""
    out: dict[str, str] = {}
    res = node.node_resources
    for net in (res.node_networks if res else None) or ():
        for addr in net.addresses or ():
            if addr.alias and addr.address:
                out.setdefault(addr.alias, addr.address)
    return out


def _ports(networks: list[NetworkResource] | None):
    for net in networks or ():
        yield from (*(net.reserved_ports or ()), *(net.dynamic_ports or ()))


def needs_host_networks(networks: list[NetworkResource] | None) -> bool:
    return any((p.host_network or DEFAULT) != DEFAULT for p in _ports(networks))


def missing_host_network(node: Node, networks: list[NetworkResource] | None) -> str:
    """The feasibility reason for the first port whose host network the node lacks, or ""."""
    have = host_network_addresses(node)
    for p in _ports(networks):
        name = p.host_network or DEFAULT
        if name != DEFAULT and name not in have:
            return f'missing host network "{name}" for port "{p.label}"'
    return ""


def with_host_ips(resources, node: Node, networks: list[NetworkResource] | None):
    """`AllocatedResources` whose port mappings of host-network ports carry that network's address."""
    labels = {p.label: p.host_network for p in _ports(networks) if (p.host_network or DEFAULT) != DEFAULT}
    if not labels or not resources.shared.ports:
        return resources
    have = host_network_addresses(node)
    ports = [evolve(m, host_ip=have[labels[m.label]]) if labels.get(m.label) in have else m
             for m in resources.shared.ports]
    return evolve(resources, shared=evolve(resources.shared, ports=ports))
