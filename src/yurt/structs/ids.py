"""Identifiers: random UUIDs as Nomad makes them, and short forms for display."""

import itertools
import os
import uuid


def generate_uuid() -> str:
    return str(uuid.uuid4())


def short_id(full: str, length: int = 8) -> str:
    return full[:length]


# Alloc IDs carry a locality hint: a plan builder (`scheduler.placement.PlanBuilder`) writes
# one as the last 4 hex characters of each run of `HINT_RUN` IDs it hands out, so the allocs
# placed together share a leaf of the allocs table's trie (`state.cow.HintedCowMap`, which
# takes the top 3 levels' slots, 15 bits, from it). The IDs stay random UUIDs (v4 form, 106
# random bits; the first 8 characters, the short ID, are random). Each hint is a block
# number from a process-wide counter (`next()` of an `itertools.count` is atomic under the
# GIL: two scheduler threads never share a block) with its three 5-bit groups reversed: a
# level-0 slot is the block's top bits, a leaf's the bottom ones, so consecutive blocks share
# the upper branches too (a plan's ~31 leaves hang off one or two level-2 branches).
HINT_RUN = 32
_blocks = itertools.count(int.from_bytes(os.urandom(2), "big"))


def next_locality_hint() -> int:
    """The next block's locality hint: a 16-bit int (written big-endian as the ID's last 2 bytes)."""
    b = next(_blocks)
    return (b >> 10 & 31) | (b >> 5 & 31) << 5 | (b & 31) << 10 | (b & 0x8000)
