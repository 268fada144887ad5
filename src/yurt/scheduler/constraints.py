"""Constraint operators and `${...}` target interpolation against a node.

`constraint_matches(constraint, node)` is the whole check for one node attribute
constraint (not `distinct_hosts` / `distinct_property`, which depend on placements).
"""

from __future__ import annotations

import re
from functools import lru_cache

from yurt.structs import Constraint, Node

from .versions import check_version_constraint

OP_DISTINCT_HOSTS = "distinct_hosts"
OP_DISTINCT_PROPERTY = "distinct_property"
OP_SET_CONTAINS = "set_contains"
OP_SET_CONTAINS_ALL = "set_contains_all"
OP_SET_CONTAINS_ANY = "set_contains_any"
OP_IS_SET = "is_set"
OP_IS_NOT_SET = "is_not_set"
OP_REGEXP = "regexp"
OP_VERSION = "version"
OP_SEMVER = "semver"

PLACEMENT_OPERATORS = (OP_DISTINCT_HOSTS, OP_DISTINCT_PROPERTY)


def resolve_target(target: str, node: Node) -> tuple[str | None, bool]:
    """The value of a constraint target for `node`: `${attr.X}` and friends are looked up,
    anything else is a literal. Returns `(value, found)`."""
    if not target.startswith("${") or not target.endswith("}"):
        return target, True
    key = target[2:-1]
    if key == "node.unique.id":
        return node.id, True
    if key == "node.unique.name":
        return node.name, True
    if key == "node.datacenter":
        return node.datacenter, True
    if key == "node.class":
        return node.node_class, True
    if key == "node.pool":
        return node.node_pool, True
    if key == "node.region":
        region = (node.attributes or {}).get("nomad.region")
        return region, region is not None
    if key.startswith("attr."):
        val = (node.attributes or {}).get(key[5:])
        return val, val is not None
    if key.startswith("meta."):
        val = (node.meta or {}).get(key[5:])
        return val, val is not None
    return None, False


def target_is_unique(target: str) -> bool:
    """Does the target name a per-node unique value (so results cannot be cached per class)?"""
    return (
        "${node.unique." in target
        or "${attr.unique." in target
        or "${meta.unique." in target
    )


def constraint_is_escaped(c: Constraint) -> bool:
    return target_is_unique(c.l_target) or target_is_unique(c.r_target)


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _compare_ordered(op: str, lval: str, rval: str) -> bool:
    ln, rn = _as_number(lval), _as_number(rval)
    if ln is not None and rn is not None:
        a, b = ln, rn
    else:
        a, b = lval, rval  # type: ignore[assignment]
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _split_set(text: str) -> set[str]:
    return {p.strip() for p in text.split(",")}


def check_operator(op: str, lval: str | None, rval: str | None, lfound: bool, rfound: bool) -> bool:
    """Nomad's `checkConstraint`: apply `op` to the resolved values."""
    if op == OP_IS_SET:
        return lfound
    if op == OP_IS_NOT_SET:
        return not lfound
    if op in ("!=", "not"):
        return (lval if lfound else None) != (rval if rfound else None)
    if not lfound or not rfound or lval is None or rval is None:
        return False
    if op in ("=", "==", "is"):
        return lval == rval
    if op in ("<", "<=", ">", ">="):
        return _compare_ordered(op, lval, rval)
    if op == OP_VERSION:
        return check_version_constraint(lval, rval)
    if op == OP_SEMVER:
        return check_version_constraint(lval, rval, strict_semver=True)
    if op == OP_REGEXP:
        rx = _compiled(rval)
        return rx is not None and rx.search(lval) is not None
    if op in (OP_SET_CONTAINS, OP_SET_CONTAINS_ALL):
        return _split_set(rval) <= _split_set(lval)
    if op == OP_SET_CONTAINS_ANY:
        return bool(_split_set(rval) & _split_set(lval))
    return False


def constraint_matches(c: Constraint, node: Node) -> bool:
    lval, lfound = resolve_target(c.l_target, node)
    rval, rfound = resolve_target(c.r_target, node)
    return check_operator(c.operand or "=", lval, rval, lfound, rfound)


def constraint_text(c: Constraint) -> str:
    """How Nomad prints a constraint in metrics: `${attr.kernel.name} = linux`."""
    return f"{c.l_target} {c.operand} {c.r_target}".strip()
