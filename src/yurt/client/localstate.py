"""The client's local state (`<data_dir>/client/state.db`): allocs, task handles and
task states, so a restarted agent re-attaches to its tasks instead of restarting them."""

import json
import os
import sqlite3
import threading
from typing import Any

from yurt.structs.alloc import Allocation, TaskState
from yurt.structs.codec import decode, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS allocs (id TEXT PRIMARY KEY, alloc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    alloc_id TEXT NOT NULL,
    task TEXT NOT NULL,
    handle TEXT,
    state BLOB,
    PRIMARY KEY (alloc_id, task)
);
"""


class LocalState:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def put_alloc(self, alloc: Allocation) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO allocs (id, alloc) VALUES (?, ?)", (alloc.id, encode(alloc)))

    def delete_alloc(self, alloc_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM allocs WHERE id = ?", (alloc_id,))
            self._db.execute("DELETE FROM tasks WHERE alloc_id = ?", (alloc_id,))

    def allocs(self) -> list[Allocation]:
        with self._lock:
            rows = self._db.execute("SELECT alloc FROM allocs").fetchall()
        return [decode(row[0], Allocation) for row in rows]

    def put_task_handle(self, alloc_id: str, task: str, handle: dict[str, Any] | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO tasks (alloc_id, task, handle) VALUES (?, ?, ?) "
                "ON CONFLICT (alloc_id, task) DO UPDATE SET handle = excluded.handle",
                (alloc_id, task, json.dumps(handle) if handle is not None else None),
            )

    def put_task_state(self, alloc_id: str, task: str, state: TaskState) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO tasks (alloc_id, task, state) VALUES (?, ?, ?) "
                "ON CONFLICT (alloc_id, task) DO UPDATE SET state = excluded.state",
                (alloc_id, task, encode(state)),
            )

    def tasks(self, alloc_id: str) -> dict[str, tuple[dict[str, Any] | None, TaskState | None]]:
        with self._lock:
            rows = self._db.execute("SELECT task, handle, state FROM tasks WHERE alloc_id = ?", (alloc_id,)).fetchall()
        return {
            task: (json.loads(handle) if handle else None, decode(state, TaskState) if state else None)
            for task, handle, state in rows
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
