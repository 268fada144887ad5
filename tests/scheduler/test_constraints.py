"""Constraint operators, target interpolation and version comparison (pure)."""

import pytest

from yurt.scheduler.constraints import check_operator, constraint_matches, resolve_target
from yurt.scheduler.node_class import computed_class
from yurt.scheduler.versions import check_version_constraint
from yurt.structs import Constraint, evolve
from yurt.testing.mock import mock_node


@pytest.mark.parametrize(
    "op,lval,rval,expected",
    [
        ("=", "linux", "linux", True),
        ("==", "linux", "windows", False),
        ("is", "a", "a", True),
        ("!=", "linux", "windows", True),
        ("not", "linux", "linux", False),
        ("<", "2", "10", True),  # numeric, not lexical
        ("<", "b", "a", False),  # lexical
        ("<=", "1.5", "1.5", True),
        (">", "10", "9", True),
        (">=", "3", "4", False),
        ("version", "1.2.3", ">= 1.2, < 2", True),
        ("version", "2.0.0", ">= 1.2, < 2", False),
        ("version", "1.2.3-beta", ">= 1.0", False),
        ("version", "1.4", "~> 1.2", True),
        ("version", "2.0", "~> 1.2", False),
        ("version", "1.2.9", "~> 1.2.3", True),
        ("version", "1.3.0", "~> 1.2.3", False),
        ("semver", "1.2.3", ">= 1.2.0", True),
        ("semver", "1.2", ">= 1.0.0", False),  # not strict semver
        ("semver", "1.0.0-rc.1", "< 1.0.0", False),  # prerelease needs a prerelease constraint
        ("semver", "1.0.0-rc.2", ">= 1.0.0-rc.1", True),
        ("regexp", "ubuntu-22.04", "^ubuntu", True),
        ("regexp", "debian", "^ubuntu", False),
        ("set_contains", "a,b,c", "a,c", True),
        ("set_contains_all", "a,b", "a,c", False),
        ("set_contains_any", "a,b", "c,b", True),
        ("set_contains_any", "a,b", "c,d", False),
    ],
)
def test_operators(op, lval, rval, expected):
    assert check_operator(op, lval, rval, True, True) is expected


def test_is_set_and_missing_attributes():
    assert check_operator("is_set", "x", None, True, False)
    assert not check_operator("is_set", None, None, False, False)
    assert check_operator("is_not_set", None, None, False, False)
    assert not check_operator("=", None, "linux", False, True)
    assert check_operator("!=", None, "windows", False, True)  # a missing attribute differs


def test_targets():
    node = mock_node(datacenter="dc7", node_class="gpu", node_pool="prod", name="n1")
    assert resolve_target("${node.unique.id}", node) == (node.id, True)
    assert resolve_target("${node.unique.name}", node) == ("n1", True)
    assert resolve_target("${node.datacenter}", node) == ("dc7", True)
    assert resolve_target("${node.class}", node) == ("gpu", True)
    assert resolve_target("${node.pool}", node) == ("prod", True)
    assert resolve_target("${attr.kernel.name}", node) == ("linux", True)
    assert resolve_target("${meta.database}", node) == ("mysql", True)
    assert resolve_target("${attr.nope}", node) == (None, False)
    assert resolve_target("literal", node) == ("literal", True)
    assert constraint_matches(Constraint(l_target="${meta.version}", r_target=">= 5.0", operand="version"), node)


def test_version_constraint_rejects_garbage():
    assert not check_version_constraint("not-a-version", ">= 1.0")
    assert not check_version_constraint("1.0", "bogus constraint")


def test_computed_class_ignores_unique_values():
    a = mock_node()
    b = mock_node()  # different id, name, unique.hostname
    assert computed_class(a) == computed_class(b)
    c = evolve(b, attributes={**b.attributes, "kernel.name": "windows"})
    assert computed_class(c) != computed_class(a)
    d = evolve(a, datacenter="dc2")
    assert computed_class(d) != computed_class(a)
