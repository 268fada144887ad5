"""The RPC listener's steady path after issue 7's trimming: one kept change-watcher per
connection and node (`_NodeWatch`) instead of a registration per blocking request; status
updates acknowledged straight from the flush that applies them (`AllocUpdateBatcher.
submit_then`), the ack encoded once per flush; `ChangeWatchers.watch(keep=True)`; frames
that arrive whole, split or several at once."""

import asyncio

from yurt.rpc import frame
from yurt.rpc.server import NODE_WATCHES_MAX, _ack_frame
from yurt.server.endpoints.allocs import AllocUpdateBatcher
from yurt.state.commands import AllocUpdate, NodeRegister
from yurt.state.watch import CallbackWaiter, ChangeWatchers
from yurt.testing.mock import mock_node

from test_rpc_dispatch import _Cluster, _turns


def _update(c: _Cluster, alloc_id: str, status: str = "running") -> int:
    return c.send("PUT", "/v1/internal/allocs/update", None, {"Allocs": [{"ID": alloc_id, "ClientStatus": status}]})


async def test_a_node_stays_watched_across_requests_until_the_connection_closes():
    c = _Cluster()
    first = c.watch(0, 0)
    index = c.reply_to(first)[2]
    for n in range(3):  # watch, answered by a placement, watch again: one registration all along
        seq = c.watch(index, n)
        assert c.store._watchers.waiting() == 1 and len(c.conn.node_watches) == 1
        alloc = c.place(n)
        await _turns()
        (_, status, index, body) = c.reply_to(seq)
        assert status == 200 and [a["ID"] for a in body["Changed"]] == [alloc.id] and body["Total"] == n + 1
        assert not c.conn.watches and c.store._watchers.waiting() == 1
    c.conn.connection_lost(None)
    assert c.store._watchers.waiting() == 0 and not c.conn.node_watches


async def test_two_waiting_requests_of_one_node_are_both_answered_by_one_write():
    c = _Cluster()
    index = c.reply_to(c.watch(0, 0))[2]
    one, two = c.watch(index, 0), c.watch(index, 0)
    await _turns()
    assert c.reply_to(one) is None and c.reply_to(two) is None and len(c.conn.watches) == 2
    alloc = c.place()
    await _turns()
    for seq in (one, two):
        (_, status, _, body) = c.reply_to(seq)
        assert status == 200 and [a["ID"] for a in body["Changed"]] == [alloc.id]
    assert not c.conn.watches


async def test_a_connection_keeps_at_most_its_limit_of_idle_node_watches():
    c = _Cluster()
    nodes = [mock_node() for _ in range(NODE_WATCHES_MAX + 2)]
    for node in nodes:
        c.store.apply(NodeRegister(node=node))
    index = c.store.snapshot().index

    def watch(node, wait):
        return c.send("GET", f"/v1/internal/node/{node.id}/allocs",
                      {"index": str(index), "wait": wait, "delta": "1", "known": "0"})

    waiting = watch(nodes[0], "300s")
    short = [watch(node, "10ms") for node in nodes[1:-1]]
    assert len(c.conn.node_watches) == NODE_WATCHES_MAX + 1, "none idle yet: none dropped"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while any(c.reply_to(seq) is None for seq in short) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert all(c.reply_to(seq)[1] == 200 for seq in short)
    assert c.store._watchers.waiting() == NODE_WATCHES_MAX + 1, "answered, their nodes stay watched"
    watch(nodes[-1], "300s")  # one more node: the idle ones go
    assert set(c.conn.node_watches) == {nodes[0].id, nodes[-1].id} and c.store._watchers.waiting() == 2
    assert c.reply_to(waiting) is None
    c.conn.connection_lost(None)
    assert c.store._watchers.waiting() == 0


async def test_status_updates_are_acknowledged_by_their_flush_in_the_frame_reply_would_send():
    c = _Cluster()
    a, b = c.place(0), c.place(1)
    first, second = _update(c, a.id), _update(c, b.id)
    assert c.reply_to(first) is None and c.reply_to(second) is None  # queued for one flush
    await _turns()
    index = c.store.snapshot().index
    for seq in (first, second):
        assert c.reply_to(seq) == (seq, 200, index, {"Index": index})
    for seq, idx in ((7, index), (2**40, 12345), (1, 1), (3, 0)):
        assert _ack_frame(seq, idx) == frame((seq, 200, max(idx, 1), {"Index": idx}))


async def test_a_flush_that_fails_answers_every_update_of_its_batch_with_the_error():
    c = _Cluster()
    a, b = c.place(0), c.place(1)

    def refuse(command):
        raise RuntimeError("disk full")

    c.store.apply = refuse
    first, second = _update(c, a.id), _update(c, b.id)
    await _turns()
    for seq in (first, second):
        assert c.reply_to(seq)[1:] == (500, 0, "disk full")


async def test_submit_then_calls_back_after_the_commit_and_answers_at_once_when_nothing_is_queued():
    c = _Cluster()
    batcher = AllocUpdateBatcher(c.server, 0.0, lambda: 5)
    alloc = c.place()
    seen = []
    assert batcher.submit_then([], lambda *a: seen.append(a)) == c.store.snapshot().index and not seen
    assert batcher.submit_then([AllocUpdate(id=alloc.id, client_status="running")],
                               lambda index, exc: seen.append((index, exc, c.store.snapshot().index))) is None
    future = batcher.submit_nowait([AllocUpdate(id=alloc.id, client_status="complete")])
    await _turns()
    index = c.store.snapshot().index
    assert seen == [(index, None, index)] and future.result() == index
    assert c.store.snapshot().alloc_by_id(alloc.id).client_status == "complete"  # the later update won


async def test_updates_of_allocs_not_stored_are_queued_unlooked_and_left_out_of_the_command():
    """The batcher does not look the reported allocs up (the FSM does, once): an update of
    an alloc the server no longer has is answered by the flush, is left out of the command
    that is logged and that listeners read, and a flush of only such updates commits
    nothing."""
    c = _Cluster()
    batcher = AllocUpdateBatcher(c.server, 0.0, lambda: 5)
    alloc = c.place()
    commands = []
    c.store.add_listener(lambda index, command: commands.append(command))
    before = c.store.snapshot().index
    seen = []
    assert batcher.submit_then([AllocUpdate(id="gone", client_status="running")],
                               lambda index, exc: seen.append((index, exc))) is None
    await _turns()
    assert seen == [(before, None)] and c.store.snapshot().index == before and not commands
    assert batcher.submit_then([AllocUpdate(id="gone", client_status="complete"),
                                AllocUpdate(id=alloc.id, client_status="running")],
                               lambda index, exc: seen.append((index, exc))) is None
    await _turns()
    assert seen[1] == (before + 1, None) and c.store.snapshot().index == before + 1
    assert [u.id for u in commands[0].allocs] == [alloc.id] and commands[0].evals == []
    assert c.store.snapshot().alloc_by_id(alloc.id).client_status == "running"


class _Recorder(CallbackWaiter):
    __slots__ = ("woken",)

    def __init__(self, loop):
        self.loop, self.woken = loop, 0

    def wake(self) -> None:
        self.woken += 1


async def test_a_kept_waiter_is_woken_at_every_change_until_forgotten():
    loop = asyncio.get_running_loop()
    watchers = ChangeWatchers()
    kept, once = _Recorder(loop), _Recorder(loop)
    watchers.watch(("t",), kept, keep=True)
    watchers.watch(("t",), once)
    assert watchers.waiting() == 2 and sorted(watchers.watched()) == ["t", "t"]
    for _ in range(3):
        watchers.notify(t for t in ("t", "other"))  # any iterable of tables
        await asyncio.sleep(0)
    assert (kept.woken, once.woken) == (3, 1) and watchers.waiting() == 1
    watchers.forget(kept)
    watchers.notify({"t"})
    await asyncio.sleep(0)
    assert kept.woken == 3 and watchers.waiting() == 0 and watchers.watched() == ()


async def test_frames_split_across_reads_or_several_in_one_read_are_all_served():
    c = _Cluster()
    path = f"/v1/internal/node/{c.node.id}/heartbeat"
    frames = [frame((s, "PUT", path, None, {"Status": "ready"})) for s in (101, 102, 103)]
    data = b"".join(frames)
    c.conn.data_received(data[:3])  # not even a whole length
    c.conn.data_received(data[3:len(frames[0]) + 5])
    c.conn.data_received(data[len(frames[0]) + 5:])
    c.conn.data_received(frames[0][:-1])  # a frame short of its last byte, then the byte
    c.conn.data_received(frames[0][-1:])
    assert [r[0] for r in c.transport.replies] == [101, 102, 103, 101]
    assert all(r[1] == 200 and r[3]["HeartbeatTTL"] > 0 for r in c.transport.replies)


async def test_a_write_between_the_check_and_the_node_watch_still_answers():
    c = _Cluster()
    index = c.reply_to(c.watch(0, 0))[2]
    placed = []
    watch_node = c.conn.watch_node

    def write_first(*args):  # as a commit on another thread would land, before the watch is in place
        placed.append(c.place())
        return watch_node(*args)

    c.conn.watch_node = write_first
    seq = c.watch(index, 0)
    (_, status, _, body) = c.reply_to(seq)
    assert status == 200 and [a["ID"] for a in body["Changed"]] == [placed[0].id]
