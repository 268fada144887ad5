"""The RPC listener's delta alloc watches sleep through writes that change no node's alloc
version map (a batch of client status reports: `ChangeWatchers.notify(versions_changed=
False)`), yet a client that keeps watching sees every server-side change (new allocs, stops,
removals), and the full-form and HTTP-style waits still wake at client-side changes."""

import asyncio
import random

import pytest

from yurt.http.alloc_delta import wait_node_allocs
from yurt.rpc.server import _NodeWatch
from yurt.state.commands import AllocClientUpdate, AllocDesiredTransition, AllocUpdate, EvalDelete, PlanApply
from yurt.state.txn import node_allocs_key
from yurt.structs import DesiredTransition
from yurt.testing.mock import mock_alloc

from test_rpc_dispatch import _Cluster, _turns


@pytest.fixture
def wakes(monkeypatch):
    """How many times a node watch of the RPC listener was woken."""
    count = [0]
    inner = _NodeWatch.wake

    def counted(self):
        count[0] += 1
        inner(self)

    monkeypatch.setattr(_NodeWatch, "wake", counted)
    return count


def _report(c: _Cluster, *alloc_ids: str, status: str = "running") -> int:
    return c.store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=i, client_status=status) for i in alloc_ids],
                                           updated_at=2))


def _stop_plan(c: _Cluster, alloc_id: str) -> PlanApply:
    stop = c.store.snapshot().alloc_by_id(alloc_id)
    from msgspec.structs import replace
    return PlanApply(eval_id="e", job=c.job, updated_at=3,
                     node_update={c.node.id: [replace(stop, desired_status="stop", desired_description="alloc not needed")]})


async def test_a_status_report_does_not_wake_the_delta_watch_and_a_placement_does(wakes):
    c = _Cluster()
    index = c.reply_to(c.watch(0, 0))[2]
    alloc = c.place(0)
    seq = c.watch(index, 0)
    (_, _, index, body) = c.reply_to(seq)  # answered at once: the alloc was placed before
    assert body["Total"] == 1
    seq = c.watch(index, 1)
    await _turns()
    before = wakes[0]
    for status in ("running", "running", "failed"):
        _report(c, alloc.id, status=status)
        await _turns()
        assert c.reply_to(seq) is None
    assert wakes[0] == before, "a batch of status reports woke the node's watch"
    assert c.store.table_index(node_allocs_key(c.node.id)) > index, "the reports did write the node's allocs"
    second = c.place(1)
    await _turns()
    assert wakes[0] == before + 1
    (_, status, _, body) = c.reply_to(seq)
    assert status == 200 and [a["ID"] for a in body["Changed"]] == [second.id] and body["Total"] == 2


async def test_a_batch_that_mixes_reports_and_a_placement_wakes_and_answers(wakes):
    c = _Cluster()
    first = c.place(0)
    index = c.reply_to(c.watch(0, 0))[2]
    seq = c.watch(index, 1)
    second = mock_alloc(c.job, c.node, index=1)
    c.store.apply_batch([
        AllocClientUpdate(allocs=[AllocUpdate(id=first.id, client_status="running")], updated_at=2),
        PlanApply(eval_id="e", job=c.job, updated_at=1, node_allocation={c.node.id: [second]}),
    ])
    await _turns()
    (_, status, _, body) = c.reply_to(seq)
    assert status == 200 and [a["ID"] for a in body["Changed"]] == [second.id]


async def test_a_full_form_watch_still_answers_a_status_report():
    c = _Cluster()
    alloc = c.place(0)
    (_, _, index, body) = c.reply_to(c.send("GET", f"/v1/internal/node/{c.node.id}/allocs", {"index": "0"}))
    assert set(body["Allocs"]) == {alloc.id}
    full = c.send("GET", f"/v1/internal/node/{c.node.id}/allocs", {"index": str(index), "wait": "300s"})
    delta = c.watch(index, 1)  # a delta request waiting beside it on the same node watch
    await _turns()
    assert c.reply_to(full) is None and c.reply_to(delta) is None
    at = _report(c, alloc.id)
    await _turns()
    (_, status, answered_at, body) = c.reply_to(full)
    assert status == 200 and answered_at == at and set(body["Allocs"]) == {alloc.id}
    assert c.reply_to(delta) is None, "the delta request waits on"
    (node_watch,) = c.conn.node_watches.values()
    assert node_watch.versions_only, "only a delta request waits now"
    _report(c, alloc.id, status="failed")
    await _turns()
    assert c.reply_to(delta) is None


async def test_blocking_queries_outside_the_listener_still_wake_on_a_status_report():
    c = _Cluster()
    alloc = c.place(0)
    key = node_allocs_key(c.node.id)
    index = c.store.table_index(key)
    changed = asyncio.ensure_future(c.store.wait_for_change([key], index, 30))
    answer = asyncio.ensure_future(wait_node_allocs(c.store, c.node.id, index, 30))  # the HTTP route's full form
    await _turns()
    assert not changed.done() and not answer.done()
    at = _report(c, alloc.id)
    assert await asyncio.wait_for(changed, 5) == at
    assert (await asyncio.wait_for(answer, 5)).index == at


class _Client:
    """The client's side of the delta watch over the listener (as `ClientAgent._next_allocs`):
    `known` is its {alloc ID: AllocModifyIndex}; a count that does not add up falls back to
    the full map (index 0)."""

    def __init__(self, c: _Cluster) -> None:
        self.c = c
        self.known: dict[str, int] = {}
        self.index = 0
        self.full = False
        self.seq = c.watch(0, 0)

    def read(self) -> bool:
        """Take the answer to the waiting request, if any, and ask again; True when one came."""
        reply = self.c.reply_to(self.seq)
        if reply is None:
            return False
        (_, status, index, body) = reply
        assert status == 200, reply
        if self.full:
            self.known, self.full = dict(body["Allocs"]), False
        else:
            self.known.update((a["ID"], a["AllocModifyIndex"]) for a in body["Changed"])
            if len(self.known) != body["Total"]:  # one left the node: the full map
                self.full = True
                self.seq = self.c.send("GET", f"/v1/internal/node/{self.c.node.id}/allocs", {"index": "0"})
                return True
        self.index = index
        self.seq = self.c.watch(index, len(self.known))
        return True

    async def settle(self) -> None:
        for _ in range(20):
            await _turns()
            if not self.read():
                return
        raise AssertionError("the watch kept answering")


@pytest.mark.parametrize("seed", range(6))
async def test_a_watching_client_sees_every_server_side_change(seed, wakes):
    """Random placements, stops, removals, desired transitions and status reports (alone or
    batched together): after each, the client's map is the server's, and status reports
    alone never woke the watch."""
    rnd = random.Random(seed)
    c = _Cluster()
    client = _Client(c)
    await client.settle()
    placed = 0
    for step in range(40):
        snap = c.store.snapshot()
        live = [a for a in snap.allocs_by_node(c.node.id)]
        kind = rnd.choice(["place", "place", "report", "report", "report", "stop", "remove", "transition", "mixed"])
        if not live and kind not in ("place", "mixed"):
            kind = "place"
        woken = wakes[0]
        if kind == "place":
            c.place(placed)
            placed += 1
        elif kind == "report":
            _report(c, *(a.id for a in rnd.sample(live, rnd.randint(1, len(live)))),
                    status=rnd.choice(["running", "failed", "complete"]))
        elif kind == "stop":
            c.store.apply(_stop_plan(c, rnd.choice(live).id))
        elif kind == "remove":
            c.store.apply(EvalDelete(eval_ids=[], alloc_ids=[rnd.choice(live).id]))
        elif kind == "transition":
            c.store.apply(AllocDesiredTransition(transitions={rnd.choice(live).id: DesiredTransition(migrate=True)}))
        else:
            new = mock_alloc(c.job, c.node, index=placed)
            placed += 1
            c.store.apply_batch([
                AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="running") for a in live], updated_at=2),
                PlanApply(eval_id="e", job=c.job, updated_at=1, node_allocation={c.node.id: [new]}),
            ])
        await client.settle()
        server = c.store.snapshot().alloc_versions_by_node(c.node.id).to_dict()
        assert client.known == server, (step, kind)
        if kind == "report":
            assert wakes[0] == woken, "a batch of status reports woke the watch"
