"""The delta form of the client's alloc watch (`GET /v1/internal/node/:id/allocs?delta=1`).

The full form answers the node's whole `{alloc ID: AllocModifyIndex}` map on every wake and
the client pulls the changed allocs with a second request: O(allocs on the node) per wake on
both sides, two requests per wake. The delta form answers only the allocs whose
AllocModifyIndex is above the client's `index`, with their bodies (and jobs), plus the node's
alloc count (`Total`).

Why the count is enough for the client to see every removal: the client's known set K is the
node's alloc IDs as of the answer at `index` (its `X-Nomad-Index`, the index of the state key
`allocs:node:<id>`, which every write to the node's allocs touches). An alloc placed on the
node later is written at a higher index with that AllocModifyIndex, so the node's allocs now
are a subset of K + the delta D, and equal to it exactly when none of K left. The client
checks `len(K | D) == Total`; any other count means a removal it did not see, and it falls
back to the full map.

With `known=len(K)` the server also keeps waiting through wakes that change nothing the
client would see (its own status reports leave the node's version map as it was): it answers
once D is not empty or the count differs from `known`, or at the end of `wait`."""

import asyncio

from yurt.server.endpoints import EndpointError
from yurt.state.txn import node_allocs_key

from .query import wait_with_jitter


class NodeAllocsAnswer:
    """What one watch request answers: the snapshot, its index for the node, and the node's
    version map in it (`changed` is filled in for delta answers)."""

    __slots__ = ("changed", "index", "node_id", "snapshot", "versions")

    def __init__(self, snapshot, index: int, node_id: str, versions, changed: list[str] | None = None):
        self.snapshot = snapshot
        self.index = index
        self.node_id = node_id
        self.versions = versions
        self.changed = changed

    def delta(self, since: int) -> list[str]:
        if self.changed is None:
            self.changed = self.snapshot.alloc_ids_changed_since(self.node_id, since)
        return self.changed

    def changed_allocs(self, since: int) -> list:
        alloc_by_id = self.snapshot.alloc_by_id
        return [alloc_by_id(alloc_id) for alloc_id in self.delta(since)]


def node_allocs_ready(snapshot, node_id: str, min_index: int, known: int | None,
                      key: str | None = None, index: int | None = None) -> NodeAllocsAnswer | None:
    """The watch's answer in `snapshot` when it has one to give (`wait_node_allocs`'s test),
    else None (the watch keeps waiting). O(allocs written since `min_index`). `index`: the
    snapshot's index of `key` (the node's allocs), when the caller has read it already."""
    if index is None:
        index = snapshot.table_index(key or node_allocs_key(node_id))
    if min_index <= 0 or (index > min_index and known is None):
        return NodeAllocsAnswer(snapshot, index, node_id, snapshot.alloc_versions_by_node(node_id))
    if index > min_index:
        changed = snapshot.alloc_ids_changed_since(node_id, min_index)
        versions = snapshot.alloc_versions_by_node(node_id)
        if changed or len(versions) != known:
            return NodeAllocsAnswer(snapshot, index, node_id, versions, changed)
    return None


def node_allocs_now(snapshot, node_id: str, key: str | None = None) -> NodeAllocsAnswer:
    """The answer when the watch's `wait` is over: the node's allocs as they are."""
    index = snapshot.table_index(key or node_allocs_key(node_id))
    return NodeAllocsAnswer(snapshot, index, node_id, snapshot.alloc_versions_by_node(node_id))


async def wait_node_allocs(store, node_id: str, min_index: int, wait: float,
                           known: int | None = None) -> NodeAllocsAnswer:
    """Block until the node's allocs index passes `min_index` (at once when it is 0), or
    `wait` seconds (plus Nomad's jitter) are over. With `known` (the client's count of the
    node's allocs, delta form), wakes that leave nothing new above `min_index` and the count
    at `known` keep waiting. A wake costs O(allocs written since `min_index`), not O(allocs
    on the node) (`StateReader.alloc_ids_changed_since`). The RPC listener waits the same
    way without a coroutine (`yurt.rpc.server._Watch`)."""
    key = node_allocs_key(node_id)
    deadline = None
    while True:
        snapshot = store.snapshot()
        answer = node_allocs_ready(snapshot, node_id, min_index, known, key)
        if answer is not None:
            return answer
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + wait_with_jitter(wait)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return node_allocs_now(snapshot, node_id, key)
        await store.wait_for_change([key], snapshot.table_index(key), remaining)


def parse_known(value: str | None) -> int | None:
    """The `known` query parameter: the client's count of the node's allocs."""
    if value is None or value == "":
        return None
    try:
        known = int(value)
    except ValueError:
        known = -1
    if known < 0:
        raise EndpointError(400, f"Invalid known: {value!r}")
    return known


def delta_requested(value) -> bool:
    return value not in (None, "", "0", "false", False, 0)
