"""`disconnect.stop_on_client_after` on the client: cut off from every server for that
long, the client stops the allocs of groups that ask for it (Nomad's heartbeat-stop)."""

import logging
import time

from yurt.structs import TaskGroup

log = logging.getLogger(__name__)


def stop_on_client_after(tg: TaskGroup | None) -> int | None:
    """The group's limit in ns (the deprecated `stop_after_client_disconnect` too), or None."""
    if tg is None:
        return None
    if tg.disconnect is not None and tg.disconnect.stop_on_client_after:
        return tg.disconnect.stop_on_client_after
    return tg.stop_after_client_disconnect or None


def note_server_contact(agent) -> None:
    agent._last_server_contact = time.monotonic()


def stop_after_lost_contact(agent, now: float | None = None) -> list[str]:
    """Stop the allocs whose `stop_on_client_after` has passed since the last contact."""
    last = getattr(agent, "_last_server_contact", None)
    if last is None:
        return []
    silent_ns = ((time.monotonic() if now is None else now) - last) * 1e9
    stopped = []
    for runner in list(agent.alloc_runners.values()):
        alloc = runner.alloc
        limit = stop_on_client_after(alloc.job.lookup_task_group(alloc.task_group) if alloc.job else None)
        if limit is None or silent_ns < limit or runner.terminal or runner._stopping:
            continue
        log.warning("alloc %s: no contact with the servers for %.0fs: stopping it", alloc.id, silent_ns / 1e9)
        runner._stopping = True
        agent._spawn(runner.stop())
        stopped.append(alloc.id)
    return stopped
