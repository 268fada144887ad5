"""The RPC listener answers allocations (the delta watch, `allocs/get`) without their
placement `Metrics`, which no client reads (~40% of a watch answer's encode); everything
else of the alloc, its job included, is as the server holds it. The server keeps them
(the HTTP API's alloc status shows them)."""

import msgspec

from yurt.structs import AllocMetric, NodeScoreMeta
from yurt.structs.codec import to_wire
from yurt.testing.mock import mock_alloc

from test_rpc_dispatch import _Cluster, _turns


def _place_with_metrics(c: _Cluster):
    metrics = AllocMetric(nodes_evaluated=3, nodes_in_pool=3, nodes_available={"dc1": 3},
                          score_meta_data=[NodeScoreMeta(node_id=c.node.id, scores={"binpack": 0.5}, norm_score=0.5)])
    alloc = msgspec.structs.replace(mock_alloc(c.job, c.node, index=0), job=None, metrics=metrics)
    from yurt.state.commands import PlanApply
    c.store.apply(PlanApply(eval_id="e", job=c.job, updated_at=1, node_allocation={c.node.id: [alloc]}))
    return alloc


def _as_sent(c: _Cluster, alloc_id: str) -> dict:
    """The server's alloc as decoded JSON, with its job, without its metrics."""
    stored = c.store.snapshot().alloc_by_id(alloc_id)
    assert stored.metrics is not None and stored.metrics.score_meta_data, "the server keeps them"
    return msgspec.msgpack.decode(msgspec.msgpack.encode(
        to_wire(msgspec.structs.replace(stored, job=c.job, metrics=None))))


async def test_watch_answers_and_pulls_carry_no_metrics():
    c = _Cluster()
    (_, _, index, _) = c.reply_to(c.watch(0, 0))
    seq = c.watch(index, 0)
    alloc = _place_with_metrics(c)
    await _turns()
    (_, status, _, body) = c.reply_to(seq)
    assert status == 200 and [a["ID"] for a in body["Changed"]] == [alloc.id]
    (sent,) = body["Changed"]
    assert sent["Metrics"] is None
    assert sent == _as_sent(c, alloc.id)

    seq = c.send("PUT", "/v1/internal/allocs/get", None, {"AllocIDs": [alloc.id]})
    await _turns()
    (_, status, _, pulled) = c.reply_to(seq)
    assert status == 200 and pulled == [_as_sent(c, alloc.id)]
