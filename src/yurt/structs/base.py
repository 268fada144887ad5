"""The base every domain type derives from: Nomad's wire names, keyword construction."""

from typing import Any

import msgspec

from .naming import nomad_name

NS = 1
US = 1_000 * NS
MS = 1_000 * US
SECOND = 1_000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


class NomadStruct(msgspec.Struct, rename=nomad_name, kw_only=True):
    """A domain type whose JSON form uses Nomad's field names.

    Treat instances as immutable once they are in the state store: derive a changed
    copy with `evolve(obj, field=value)`.
    """


def evolve(obj: Any, **changes: Any) -> Any:
    """A copy of `obj` with `changes` applied (shallow)."""
    return msgspec.structs.replace(obj, **changes)


def deep_copy(obj: Any) -> Any:
    """A deep copy through the codec (used when a stored object must be edited)."""
    return msgspec.convert(msgspec.to_builtins(obj), type(obj))
