"""`StateStore.apply_replicated`: how an HA follower applies entries the leader logged."""

import asyncio

import pytest
from state_fixtures import alloc, evaluation, job, node

from yurt.state import StateStore
from yurt.state.commands import JobRegister, NodeRegister, PlanApply
from yurt.state.store import LogGap
from yurt.state.txn import node_allocs_key


def leader_and_follower(tmp_path):
    leader = StateStore.open(str(tmp_path))
    n = node()
    leader.apply(NodeRegister(node=n))
    j = job("web")
    ev = evaluation(j)
    leader.apply(JobRegister(job=j, eval=ev, submit_time=1))
    return leader, StateStore(None), n, j, ev


def logged(leader: StateStore, after: int = 0) -> list[tuple[int, bytes]]:
    return list(leader._backend.entries_after(after))


async def test_follower_gets_the_same_tables_and_indexes_and_its_watchers_wake(tmp_path):
    leader, follower, n, j, ev = leader_and_follower(tmp_path)
    assert follower.apply_replicated(logged(leader)) == leader.latest_index == 2
    assert follower.snapshot().job_by_id("default", "web").modify_index == 2
    seen = []
    follower.add_listener(lambda index, command: seen.append((index, type(command).__name__)))

    stored = leader.snapshot().job_by_id("default", "web")
    waiter = asyncio.create_task(follower.wait_for_change([node_allocs_key(n.id)], 2, timeout=10))
    await asyncio.sleep(0)
    index = leader.apply(PlanApply(eval_id=ev.id, job=stored, updated_at=2,
                                   node_allocation={n.id: [alloc(stored, n.id, ev.id)]}))
    follower.apply_replicated(logged(leader))  # entries already applied are skipped
    assert await asyncio.wait_for(waiter, 5) == index == 3  # the per-node watch woke, not a timeout
    assert seen == [(3, "PlanApply")]
    a = leader.snapshot().allocs_by_node(n.id)[0]
    assert follower.snapshot().alloc_by_id(a.id).create_index == a.create_index == 3
    leader.close()


def test_a_gap_raises_and_changes_nothing(tmp_path):
    leader, follower, *_ = leader_and_follower(tmp_path)
    with pytest.raises(LogGap):
        follower.apply_replicated(logged(leader, after=1))
    assert follower.latest_index == 0
    leader.close()


def test_a_skipped_entry_starts_a_new_touch_log():
    """A failed entry's partial writes have no touch-log entry: the tables after it start a
    new log lineage, so the scheduler's node table reads every node again."""
    from yurt.state.store import _with_index
    from yurt.state.tables import Tables, log_touched

    tables = Tables()
    log_touched(tables, 1, {"allocs:node-usage:n1"})
    after = _with_index(tables, 2)
    assert after.index == 2
    assert after.touch_log[0] is not tables.touch_log[0]
    assert after.touch_log[2] == ()
