"""A driver's wait_task that fails with an unexpected error ends the task's run, not its
runner: the stop still ends in Terminated + Killed and the alloc's `complete` (W7: an
exit.json write race raised FileNotFoundError out of docker's wait_task and left allocs
`running` with a Killing event after their job was purged)."""

from fakeserver import make_alloc, raw_task


async def test_a_failed_wait_during_a_stop_still_ends_the_task(server, agent):
    a = await agent()
    driver = a.drivers["raw_exec"]
    wait = driver.wait_task
    stopping: list[bool] = []

    async def failing_wait(handle):
        result = await wait(handle)
        if stopping:
            raise FileNotFoundError(2, "No such file or directory", "exit.json")
        return result

    driver.wait_task = failing_wait
    alloc = make_alloc(a.node.id, [raw_task("web", "exec sleep 60")], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    stopping.append(True)
    await server.stop_alloc(alloc.id)
    update = await server.wait_status(alloc.id, "complete", timeout=15)
    events = [e["Type"] for e in update["TaskStates"]["web"]["Events"]]
    assert events[-3:] == ["Killing", "Terminated", "Killed"]
    assert "failed to wait on task" in update["TaskStates"]["web"]["Events"][-2]["Message"]
