"""Client garbage collection of terminal allocations (Nomad's AllocGarbageCollector).

A terminal allocation (every task dead) keeps its alloc dir, logs and local record until one of:
- the periodic check (`gc_interval`, 1m) finds the alloc dir's disk over `gc_disk_usage_threshold` (80%)
  or its inodes over `gc_inode_usage_threshold` (70%), or more than `gc_max_allocs` (50) allocations:
  terminal allocations are destroyed oldest first until all is below the limits again;
- new allocations arrive and would take the count over `gc_max_allocs` (`make_room`);
- a forced collection (`/v1/client/gc`, `/v1/client/allocation/:id/gc`);
- the server forgets the allocation (its own GC): the agent destroys the runner then.
At most `gc_parallel_destroys` (2) destroys run at once. A collected runner stays in the agent's map,
marked `destroyed`, until the server forgets the allocation, so it is not started again.
"""

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from .agent import ClientAgent
    from .allocrunner import AllocRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GCLimits:
    disk_usage_threshold: float = 80.0
    inode_usage_threshold: float = 70.0
    max_allocs: int = 50


@dataclass(frozen=True)
class DiskUsage:
    used_percent: float
    inodes_used_percent: float


def gc_reason(usage: DiskUsage, live_allocs: int, limits: GCLimits) -> str:
    """Why a terminal allocation must go now (Nomad's wording), or "" when all is within limits."""
    if usage.used_percent > limits.disk_usage_threshold:
        return f"disk usage of {usage.used_percent:.0f} is over gc threshold of {limits.disk_usage_threshold:.0f}"
    if usage.inodes_used_percent > limits.inode_usage_threshold:
        return (f"inode usage of {usage.inodes_used_percent:.0f} is over gc threshold of "
                f"{limits.inode_usage_threshold:.0f}")
    if live_allocs > limits.max_allocs:
        return f"number of allocations ({live_allocs}) is over the limit ({limits.max_allocs})"
    return ""


def room_to_make(live_allocs: int, incoming: int, max_allocs: int) -> int:
    """How many terminal allocations to destroy so that `incoming` new ones fit `gc_max_allocs`."""
    return max(0, live_allocs + incoming - max_allocs)


def disk_usage(path: str) -> DiskUsage:
    """Usage of the file system holding `path` (the client's alloc dir)."""
    target = path if os.path.exists(path) else os.path.dirname(path) or "/"
    st = os.statvfs(target)
    inodes = (st.f_files - st.f_ffree) / st.f_files * 100 if st.f_files else 0.0
    return DiskUsage(psutil.disk_usage(target).percent, inodes)


def terminated_at(runner: "AllocRunner") -> str:
    """When the allocation became terminal (its last task's FinishedAt, RFC 3339 sorts as time)."""
    return max((s.finished_at or "" for s in runner.task_states.values()), default="")


class AllocGarbageCollector:
    def __init__(self, agent: "ClientAgent"):
        cfg = agent.config
        self.agent = agent
        self.interval = cfg.gc_interval
        self.limits = GCLimits(cfg.gc_disk_usage_threshold, cfg.gc_inode_usage_threshold, cfg.gc_max_allocs)
        self._destroys = asyncio.Semaphore(max(1, cfg.gc_parallel_destroys))
        self._lock = asyncio.Lock()

    # --- what is there -------------------------------------------------------------

    def live(self) -> list["AllocRunner"]:
        return [r for r in self.agent.alloc_runners.values() if not r.destroyed]

    def collectable(self) -> list["AllocRunner"]:
        """Terminal, not yet collected allocations, oldest first."""
        return sorted((r for r in self.live() if r.terminal), key=terminated_at)

    def usage(self) -> DiskUsage:
        return disk_usage(self.agent.config.alloc_dir)

    # --- collecting ------------------------------------------------------------------

    async def destroy(self, runner: "AllocRunner", reason: str) -> None:
        async with self._destroys:
            if runner.destroyed:
                return
            log.info("garbage collecting allocation %s: %s", runner.id, reason)
            await runner.destroy()

    async def keep_usage_below_threshold(self) -> list[str]:
        """One periodic pass; returns the collected alloc IDs."""
        collected: list[str] = []
        async with self._lock:
            while True:
                reason = gc_reason(await asyncio.to_thread(self.usage), len(self.live()), self.limits)
                candidates = self.collectable()
                if not reason or not candidates:
                    return collected
                await self.destroy(candidates[0], reason)
                collected.append(candidates[0].id)

    async def make_room(self, incoming: int) -> list[str]:
        """Destroy the oldest terminal allocations so that `incoming` new ones fit `gc_max_allocs`."""
        async with self._lock:
            count = room_to_make(len(self.live()) - incoming, incoming, self.limits.max_allocs)
            doomed = self.collectable()[:count]
            await asyncio.gather(*(self.destroy(r, "new allocations and over max (%d)" % self.limits.max_allocs)
                                   for r in doomed))
            return [r.id for r in doomed]

    async def collect_all(self) -> list[str]:
        """`/v1/client/gc`: destroy every terminal allocation."""
        async with self._lock:
            doomed = self.collectable()
            await asyncio.gather(*(self.destroy(r, "forced collection") for r in doomed))
            return [r.id for r in doomed]

    async def collect(self, alloc_id: str) -> bool:
        """`/v1/client/allocation/:id/gc`: False when the allocation is unknown or not terminal."""
        runner = self.agent.alloc_runners.get(alloc_id)
        if runner is None or runner.destroyed or not runner.terminal:
            return False
        await self.destroy(runner, "forced collection")
        return True

    async def run(self) -> None:
        """The periodic loop (every `gc_interval`)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.keep_usage_below_threshold()
            except Exception as exc:  # noqa: BLE001 - the loop must survive a bad pass
                log.warning("client gc: %s", exc)
