"""JSON codec for the wire format: Nomad's names, integer-nanosecond durations.

Decoding is lenient about unknown fields (Nomad's API adds fields over time) and
strict about types; a type error names the JSON path, e.g. `$.TaskGroups[0].Count`.
"""

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def decode(data: bytes | str, typ: type[T]) -> T:
    return msgspec.json.decode(data, type=typ)


def to_wire(obj: Any) -> Any:
    """Builtins (dicts, lists) in Nomad's JSON shape."""
    return msgspec.to_builtins(obj)


def from_wire(data: Any, typ: type[T]) -> T:
    return msgspec.convert(data, typ)
