"""Computed node classes: nodes that look the same to constraints share feasibility results.

The class hashes everything a constraint can see except per-node unique values
(`unique.*` attributes and meta, the node ID and name), so a constraint on those
"escapes" the class and must be checked node by node.
"""

from __future__ import annotations

import hashlib

import msgspec

from yurt.structs import Node

_encoder = msgspec.json.Encoder(order="sorted")


def _without_unique(values: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (values or {}).items() if not k.startswith("unique.")}


def computed_class(node: Node) -> str:
    """`v1:<digits>`: a stable hash of datacenter, class, pool, non-unique attributes and
    meta, and the drivers with their health."""
    drivers = {name: (info.detected, info.healthy) for name, info in (node.drivers or {}).items()}
    payload = _encoder.encode(
        [
            node.datacenter,
            node.node_class,
            node.node_pool,
            _without_unique(node.attributes),
            _without_unique(node.meta),
            drivers,
        ]
    )
    digest = hashlib.blake2b(payload, digest_size=8).digest()
    return f"v1:{int.from_bytes(digest, 'big')}"


_CLASS_CACHE: dict[str, tuple[tuple, str]] = {}


def _same_fingerprint(a: tuple, b: tuple) -> bool:
    return a[0] is b[0] and a[1] is b[1] and a[2] is b[2] and a[3:] == b[3:]
_CLASS_CACHE_LIMIT = 100_000


def class_of(node: Node, memo: dict[str, str]) -> str:
    """The node's computed class: the one the state stored at registration (as Nomad
    does), else computed once and remembered while the node object is unchanged."""
    if node.computed_class:
        return node.computed_class
    cls = memo.get(node.id)
    if cls is not None:
        return cls
    # The state replaces a node's maps when they change; holding them keeps the
    # identity comparison sound (a freed object's id could be reused).
    fingerprint = (node.attributes, node.meta, node.drivers, node.modify_index,
                   node.datacenter, node.node_class, node.node_pool)
    cached = _CLASS_CACHE.get(node.id)
    if cached is not None and _same_fingerprint(cached[0], fingerprint):
        cls = cached[1]
    else:
        cls = computed_class(node)
        if len(_CLASS_CACHE) >= _CLASS_CACHE_LIMIT:
            _CLASS_CACHE.clear()
        _CLASS_CACHE[node.id] = (fingerprint, cls)
    memo[node.id] = cls
    return cls
