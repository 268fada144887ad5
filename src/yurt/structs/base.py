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


class NomadStruct(msgspec.Struct, rename=nomad_name, kw_only=True, gc=False):
    """A domain type whose JSON form uses Nomad's field names.

    Treat instances as immutable once they are in the state store: derive a changed
    copy with `evolve(obj, field=value)`.

    `gc=False`: instances are not tracked by Python's cyclic GC (msgspec: safe when they
    can never be part of a reference cycle). They are trees of decoded JSON values and
    other structs, never holding a reference back to an object that holds them; never
    store a struct inside itself or its own containers (the cycle would leak, not crash).
    Collections over the state's millions of allocations were ~20-45% of a large eval.
    """


def evolve(obj: Any, **changes: Any) -> Any:
    """A copy of `obj` with `changes` applied (shallow)."""
    return msgspec.structs.replace(obj, **changes)


def deep_copy(obj: Any) -> Any:
    """A deep copy through the codec (used when a stored object must be edited)."""
    return msgspec.convert(msgspec.to_builtins(obj), type(obj))
