"""Blocked evaluations: jobs that could not be fully placed, waiting for capacity.

One blocked eval per job: a newer one makes the older one a duplicate, which the
server cancels. Any change that may add capacity (a node registers or turns ready or
eligible, allocs turn terminal) unblocks them all into the broker. To avoid a missed
wake-up, an eval blocked on a snapshot older than the last unblock is released at once.
Pure bookkeeping: the server applies the results (enqueue, cancel).
"""

from dataclasses import dataclass, field

from yurt.structs import Evaluation


@dataclass
class BlockResult:
    """What the caller must do after `block`: enqueue these now, cancel those."""

    unblock_now: list[Evaluation] = field(default_factory=list)
    duplicates: list[Evaluation] = field(default_factory=list)


class BlockedEvals:
    def __init__(self) -> None:
        self.enabled = False
        self._by_job: dict[tuple[str, str], Evaluation] = {}
        self._unblock_index = 0

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            self._by_job.clear()
            self._unblock_index = 0

    def block(self, ev: Evaluation) -> BlockResult:
        result = BlockResult()
        if not self.enabled:
            return result
        key = (ev.namespace, ev.job_id)
        existing = self._by_job.get(key)
        if existing is not None and existing.id != ev.id:
            if existing.create_index > ev.create_index:
                result.duplicates.append(ev)
                return result
            result.duplicates.append(existing)
        if ev.snapshot_index and ev.snapshot_index < self._unblock_index:
            self._by_job.pop(key, None)
            result.unblock_now.append(ev)
            return result
        self._by_job[key] = ev
        return result

    def unblock(self, index: int) -> list[Evaluation]:
        """Capacity may have changed at `index`: release every blocked eval."""
        self._unblock_index = max(self._unblock_index, index)
        out = list(self._by_job.values())
        self._by_job.clear()
        return out

    def untrack(self, namespace: str, job_id: str) -> Evaluation | None:
        """The job is gone or its blocked eval was handled another way."""
        return self._by_job.pop((namespace, job_id), None)

    def has_job(self, namespace: str, job_id: str) -> bool:
        return (namespace, job_id) in self._by_job

    def __len__(self) -> int:
        return len(self._by_job)
