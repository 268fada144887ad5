"""Version constraints as Nomad evaluates them: go-version (`version`) and strict SemVer (`semver`).

`check_version_constraint("1.2.3", ">= 1.2, < 2")` -> True. A value or constraint that does
not parse never matches (Nomad treats parse errors as "not feasible").
"""

from __future__ import annotations

import re
from functools import lru_cache

# go-version: optional "v", 1+ dot-separated numbers, optional -prerelease, optional +metadata.
_GO_VERSION = re.compile(
    r"^v?([0-9]+(?:\.[0-9]+)*)"
    r"(?:-([0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*))?"
    r"(?:\+([0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*))?$"
)
_SEMVER = re.compile(
    r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_CONSTRAINT = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*(\S+)\s*$")


class Version:
    """A parsed version: numeric segments (padded to 3), prerelease identifiers."""

    __slots__ = ("segments", "pre", "explicit_segments")

    def __init__(self, segments: tuple[int, ...], pre: str, explicit_segments: int) -> None:
        self.segments = segments
        self.pre = pre
        self.explicit_segments = explicit_segments

    def compare(self, other: Version) -> int:
        n = max(len(self.segments), len(other.segments))
        a = self.segments + (0,) * (n - len(self.segments))
        b = other.segments + (0,) * (n - len(other.segments))
        if a != b:
            return -1 if a < b else 1
        return _compare_prerelease(self.pre, other.pre)


def _compare_prerelease(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a:
        return 1  # a release sorts after any prerelease
    if not b:
        return -1
    pa, pb = a.split("."), b.split(".")
    for x, y in zip(pa, pb):
        if x == y:
            continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            return -1 if int(x) < int(y) else 1
        if xd != yd:
            return -1 if xd else 1  # numeric identifiers sort first
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@lru_cache(maxsize=4096)
def parse_version(text: str, strict_semver: bool = False) -> Version | None:
    text = text.strip()
    if strict_semver:
        m = _SEMVER.match(text)
        if not m:
            return None
        return Version((int(m[1]), int(m[2]), int(m[3])), m[4] or "", 3)
    m = _GO_VERSION.match(text)
    if not m:
        return None
    segs = tuple(int(s) for s in m[1].split("."))
    explicit = len(segs)
    if len(segs) < 3:
        segs = segs + (0,) * (3 - len(segs))
    return Version(segs, m[2] or "", explicit)


def _pessimistic(v: Version, c: Version) -> bool:
    """`~> 1.2.3` means >= 1.2.3, < 1.3; `~> 1.2` means >= 1.2, < 2."""
    if v.compare(c) < 0:
        return False
    fixed = max(c.explicit_segments - 1, 1)
    return v.segments[:fixed] == c.segments[:fixed]


def _check_one(v: Version, op: str, c: Version, strict_semver: bool) -> bool:
    # go-version: a prerelease version only satisfies constraints that name a prerelease
    # of the same major.minor.patch; semver applies the same rule.
    if v.pre and not c.pre:
        return False
    if v.pre and c.pre and v.segments != c.segments:
        return False
    cmp = v.compare(c)
    if op in ("", "="):
        return cmp == 0
    if op == "!=":
        return cmp != 0
    if op == ">":
        return cmp > 0
    if op == ">=":
        return cmp >= 0
    if op == "<":
        return cmp < 0
    if op == "<=":
        return cmp <= 0
    if op == "~>" and not strict_semver:
        return _pessimistic(v, c)
    return False


@lru_cache(maxsize=4096)
def _parse_constraints(text: str, strict_semver: bool) -> tuple[tuple[str, Version], ...] | None:
    out = []
    for part in text.split(","):
        m = _CONSTRAINT.match(part)
        if not m:
            return None
        c = parse_version(m[2], strict_semver)
        if c is None:
            return None
        out.append((m[1] or "", c))
    return tuple(out) if out else None


def check_version_constraint(value: str, constraint: str, strict_semver: bool = False) -> bool:
    """Does version `value` satisfy every comma-separated clause of `constraint`?"""
    v = parse_version(value, strict_semver)
    clauses = _parse_constraints(constraint, strict_semver)
    if v is None or clauses is None:
        return False
    return all(_check_one(v, op, c, strict_semver) for op, c in clauses)
