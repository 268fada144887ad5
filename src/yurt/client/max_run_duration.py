"""`max_run_duration` of batch and sysbatch groups, enforced by the client as Nomad's
`max_run_duration_hook.go` does.

The deadline is the allocation's `CreateTime` plus the group's `max_run_duration` (stable
across task restarts and client restarts). At the deadline every task still alive is killed
(event `Killing` with "allocation exceeded max_run_duration"), poststop tasks included, and
the allocation reports client status `complete` with that description.
"""

import asyncio
import time

from yurt.structs import Allocation

from . import lifecycle as lc

MAX_RUN_DURATION_REASON = "allocation exceeded max_run_duration"
_TYPES = ("batch", "sysbatch")


def max_run_deadline(alloc: Allocation) -> int | None:
    """Unix ns at which the alloc times out, or None when it has no max_run_duration."""
    job = alloc.job
    if job is None or job.type not in _TYPES or not alloc.create_time:
        return None
    group = job.lookup_task_group(alloc.task_group)
    if group is None or not group.max_run_duration or group.max_run_duration <= 0:
        return None
    return alloc.create_time + group.max_run_duration


async def enforce_max_run_duration(runner, now=time.time_ns, sleep=asyncio.sleep) -> None:
    """Wait for the deadline of `runner.alloc` (re-read after each wait: an update may change
    it), then kill the alloc's tasks and mark it exceeded. Returns early when the alloc has
    no deadline or ends first."""
    while True:
        deadline = max_run_deadline(runner.alloc)
        if deadline is None or runner.terminal or runner.alloc.server_terminal:
            return
        remaining = deadline - now()
        if remaining <= 0:
            break
        await sleep(min(remaining / 1e9, 60.0))
    runner.max_run_exceeded = True
    runner._stopping = True  # no poststop task starts after a timeout
    await asyncio.gather(*(r.kill(lc.TASK_KILLING, kill_reason=MAX_RUN_DURATION_REASON)
                           for r in runner.task_runners.values()), return_exceptions=True)
    runner._report()
