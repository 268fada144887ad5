"""The register route's direct Node decode gives what the lenient path gives, or declines."""

import uuid

import msgspec

from yurt.http.node_decode import decode_node_register, raw_paths
from yurt.http.wire import convert, to_wire
from yurt.structs import Node, evolve
from yurt.structs.job import NetworkResource
from yurt.testing.mock import mock_node


def _lenient(raw: bytes) -> Node:
    return convert(msgspec.json.decode(raw)["Node"], Node, "node")


def test_direct_decode_matches_lenient_path_with_nulls():
    node = evolve(mock_node(), id=str(uuid.uuid4()), status="ready")
    body = {"Node": to_wire(node)}
    body["Node"]["Drivers"] = None  # nulls at the top level and nested
    body["Node"]["HostVolumes"] = {"data": {"Path": "/srv", "ReadOnly": None}}
    body["Node"]["LastDrain"] = None
    nr = body["Node"].setdefault("NodeResources", {})
    nr["Networks"] = [{"Device": "eth0", "CNI": {"a": None, "b": [1, None]}, "DNS": None}]
    raw = msgspec.json.encode(body)
    direct = decode_node_register(raw)
    assert direct is not None
    assert direct == _lenient(raw)
    assert direct.host_volumes == {"data": {"Path": "/srv"}}
    assert direct.node_resources.networks[0].cni == {"b": [1]}


def test_direct_decode_declines_what_the_lenient_path_must_word():
    assert decode_node_register(b"") is None
    assert decode_node_register(b"[]") is None
    assert decode_node_register(b'{"Node": null}') is None
    assert decode_node_register(b'{"Node": {}}') is None  # "missing node ..." comes from the lenient path
    assert decode_node_register(b'{"Node": {"ID": "x", "Datacenter": null}}') is None  # null in a str field
    assert decode_node_register(b'{"Node": {"ID": "x", "Attributes": {"a": 1}}}') is None
    assert decode_node_register(b'{"Node": {"ID": "x", "Name": "n"}, "Region": "global"}').name == "n"


def test_raw_paths_finds_the_free_form_maps():
    paths = raw_paths(msgspec.inspect.type_info(Node))
    assert ("host_volumes",) in paths and ("last_drain",) in paths
    assert ("node_resources", "networks", "cni") in paths
    assert raw_paths(msgspec.inspect.type_info(NetworkResource)) == [("cni",)]
