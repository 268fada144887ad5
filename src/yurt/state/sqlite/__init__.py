"""The embedded log backend: the command log and state snapshots in SQLite (WAL)."""

from .log import SqliteLog  # noqa: F401
