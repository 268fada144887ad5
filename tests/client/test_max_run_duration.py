"""max_run_duration: the client kills a batch alloc at CreateTime + max_run_duration and
reports it complete with Nomad's description."""

import asyncio
import time

from fakeserver import make_alloc, raw_task

from yurt.client.max_run_duration import MAX_RUN_DURATION_REASON, max_run_deadline
from yurt.structs import SECOND, evolve


def with_max_run(alloc, duration, created=None):
    group = evolve(alloc.job.task_groups[0], max_run_duration=duration)
    return evolve(alloc, job=evolve(alloc.job, task_groups=[group]),
                  create_time=time.time_ns() if created is None else created)


def test_deadline_only_for_batch_and_sysbatch_with_a_create_time():
    alloc = with_max_run(make_alloc("n", [raw_task("t", "true")]), 5 * SECOND, created=100)
    assert max_run_deadline(alloc) == 100 + 5 * SECOND
    assert max_run_deadline(evolve(alloc, job=evolve(alloc.job, type="sysbatch"))) == 100 + 5 * SECOND
    assert max_run_deadline(evolve(alloc, job=evolve(alloc.job, type="service"))) is None
    assert max_run_deadline(evolve(alloc, create_time=0)) is None
    assert max_run_deadline(with_max_run(make_alloc("n", [raw_task("t", "true")]), 0, created=100)) is None


async def test_alloc_over_its_max_run_duration_is_killed_and_complete(server, agent):
    a = await agent()
    alloc = with_max_run(make_alloc(a.node.id, [raw_task("long", "sleep 60")]), SECOND)
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    update = await server.wait_status(alloc.id, "complete", timeout=15)
    assert update["ClientDescription"] == MAX_RUN_DURATION_REASON  # complete from the moment it times out
    for _ in range(200):
        update = server.last_update(alloc.id)
        if update["TaskStates"]["long"]["State"] == "dead":
            break
        await asyncio.sleep(0.05)
    assert update["ClientStatus"] == "complete" and update["ClientDescription"] == MAX_RUN_DURATION_REASON
    events = update["TaskStates"]["long"]["Events"]
    killing = [e for e in events if e["Type"] == "Killing"]
    assert killing and killing[0]["DisplayMessage"] == MAX_RUN_DURATION_REASON
    assert update["TaskStates"]["long"]["State"] == "dead"


async def test_alloc_finishing_in_time_is_left_alone(server, agent):
    a = await agent()
    alloc = with_max_run(make_alloc(a.node.id, [raw_task("quick", "echo done")]), 30 * SECOND)
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    assert update["ClientDescription"] != MAX_RUN_DURATION_REASON
    assert not [e for e in update["TaskStates"]["quick"]["Events"] if e["Type"] == "Killing"]
