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


def class_of(node: Node, memo: dict[str, str]) -> str:
    """The node's computed class: the one the state stored at registration (as Nomad
    does), else computed once per scheduling pass."""
    if node.computed_class:
        return node.computed_class
    cls = memo.get(node.id)
    if cls is None:
        cls = memo[node.id] = computed_class(node)
    return cls
