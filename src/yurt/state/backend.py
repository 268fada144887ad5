"""The interface every log backend implements (SQLite now; etcd for HA later).

A backend stores the command log (index -> encoded command, indexes contiguous and
increasing) and whole-state snapshots (a stream of opaque chunks at an index). Saving
a snapshot also drops the log entries at or below its index. Every backend runs the
conformance suite in `tests/state/test_log_backend_conformance.py`.
"""

from collections.abc import Iterable, Iterator
from typing import Protocol


class LogBackend(Protocol):
    def append(self, entries: list[tuple[int, bytes]]) -> None:
        """Append and durably commit `(index, command)` entries, all or none."""

    def entries_after(self, index: int) -> Iterator[tuple[int, bytes]]:
        """Logged entries with an index above `index`, in order."""

    def last_index(self) -> int:
        """The highest logged index (0 when the log is empty)."""

    def latest_snapshot(self) -> tuple[int, Iterator[bytes]] | None:
        """The newest complete snapshot: its index and its chunks in order."""

    def save_snapshot(self, index: int, chunks: Iterable[bytes]) -> None:
        """Store a snapshot of the state at `index` and truncate the log up to it.
        May be called from another thread than the appender."""

    def close(self) -> None: ...
