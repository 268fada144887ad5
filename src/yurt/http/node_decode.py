"""The client's register body decoded straight into a `Node`, when that gives exactly what
the lenient path (`read_json`, then `wire.convert`: nulls dropped, then converted) gives.

Decoding JSON into the struct directly agrees with the lenient path wherever a `null`
meets a field that is nullable with a `None` default (both give None) or a field that is
not nullable (the direct decode fails, and the caller takes the lenient path). The
exceptions are free-form `dict[str, Any]` fields, whose nested nulls the lenient path
drops: the decoder finds them by type inspection (`raw paths`) and drops their nulls after
the decode. When the Node type holds anything else that would differ, no direct decoder
is built and every body takes the lenient path.
"""

import msgspec

from yurt.structs import Node

from .wire import drop_nulls

_mi = msgspec.inspect


def _is_raw_dict(t) -> bool:
    return isinstance(t, _mi.DictType) and isinstance(t.key_type, _mi.StrType) and isinstance(t.value_type, _mi.AnyType)


def raw_paths(info, stack: tuple = ()) -> list[tuple[str, ...]] | None:
    """Attribute paths (a list on the way is walked item by item) to the `dict[str, Any]`
    fields below struct type `info`; None when a direct decode could differ elsewhere."""
    from .routes_internal import _decoded_type, _nullable, _nulls_are_defaults

    if info.cls in stack:
        return None
    out: list[tuple[str, ...]] = []
    for f in info.fields:
        t = _decoded_type(f)
        if t is None:
            return None
        if _is_raw_dict(t):
            out.append((f.name,))
            continue
        if _nulls_are_defaults(t, set()):
            continue
        if isinstance(t, _mi.ListType) and not _nullable(t.item_type):
            t = t.item_type
        if not isinstance(t, _mi.StructType):
            return None
        below = raw_paths(t, stack + (info.cls,))
        if below is None:
            return None
        out.extend((f.name,) + p for p in below)
    return out


def _build():
    paths = raw_paths(_mi.type_info(Node))
    if paths is None:
        return None
    body = msgspec.defstruct("NodeRegisterBody", [("Node", Node | None, None)])
    return msgspec.json.Decoder(body), paths


_DECODER: list = []  # [the decoder and its raw paths, or None], built on first use


def _drop_at(obj, path: tuple[str, ...]) -> None:
    value = getattr(obj, path[0])
    if value is None:
        return
    if len(path) == 1:
        setattr(obj, path[0], drop_nulls(value))
        return
    for item in value if isinstance(value, list) else (value,):
        _drop_at(item, path[1:])


def decode_node_register(raw: bytes) -> Node | None:
    """The register body's `Node` as the lenient path reads it, or None when the direct
    decode does not apply (malformed, a null in a non-null field, no node or no node ID):
    the caller then takes the lenient path, which also words the errors."""
    if not _DECODER:
        _DECODER.append(_build())
    if _DECODER[0] is None:
        return None
    decoder, paths = _DECODER[0]
    try:
        node = decoder.decode(raw).Node
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if node is None or not node.id:
        return None
    for path in paths:
        _drop_at(node, path)
    return node
