"""The truncation after a snapshot paces its deletes (`_DELETE_TXN_BYTES` per transaction)
from the sizes of the entries this process appended, without reading them back from the log;
rows it has no sizes of (appended by an earlier process, or past `_APPENDED_MAX`) are read
back as before. Either way the log keeps exactly the entries above the snapshot."""

from __future__ import annotations

import sqlite3

from yurt.state.sqlite import SqliteLog
from yurt.state.sqlite import log as sqlite_log


def _traced(monkeypatch) -> list[str]:
    statements: list[str] = []
    real_connect = sqlite_log._connect

    def traced(path, durable):
        conn = real_connect(path, durable)
        conn.set_trace_callback(lambda sql: statements.append(sql) if " log " in sql + " " else None)
        return conn

    monkeypatch.setattr(sqlite_log, "_connect", traced)
    return statements


def _deletes(statements: list[str]) -> list[int]:
    return [int(sql.rsplit("<=", 1)[1]) for sql in statements if sql.startswith("DELETE FROM log")]


def _selects(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.startswith("SELECT idx, length(command)")]


def _rows(path) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [i for (i,) in db.execute("SELECT idx FROM log ORDER BY idx")]
    finally:
        db.close()


def test_appended_entries_are_truncated_in_pieces_without_reading_their_sizes_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_log, "_DELETE_TXN_BYTES", 10_000)
    statements = _traced(monkeypatch)
    path = tmp_path / "state.db"
    backend = SqliteLog(str(path))
    sizes = {i: 4_000 for i in range(1, 11)} | {11: 25_000, 12: 100, 13: 100, 14: 100}
    backend.append([(i, bytes(sizes[i])) for i in range(1, 6)])  # one transaction
    for i in range(6, 15):
        backend.append([(i, bytes(sizes[i]))])
    del statements[:]
    backend.save_snapshot(13, [b"chunk"])
    assert _deletes(statements) == [2, 4, 6, 8, 10, 11, 13]  # as `_delete_in_pieces` paces them
    assert all("idx <= 0" in sql for sql in _selects(statements))  # (rows below the first appended: none)
    assert list(backend.entries_after(0)) == [(14, bytes(100))]
    del statements[:]
    backend.append([(15, bytes(100))])
    backend.save_snapshot(15, [b"chunk"])
    # 14 (kept over from the first truncation) and 15 in one piece; the rows below 14 are gone
    assert _deletes(statements) == [15] and all("idx <= 13" in sql for sql in _selects(statements))
    backend.close()
    assert _rows(path) == []


def test_rows_of_an_earlier_process_are_read_back_then_the_appended_ones_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_log, "_DELETE_TXN_BYTES", 10_000)
    path = tmp_path / "state.db"
    first = SqliteLog(str(path))
    first.append([(i, bytes(6_000)) for i in range(1, 5)])
    first.close()
    statements = _traced(monkeypatch)
    backend = SqliteLog(str(path))  # (as a restart: nothing appended by this process yet)
    for i in range(5, 9):
        backend.append([(i, bytes(6_000))])
    del statements[:]
    backend.save_snapshot(7, [b"chunk"])
    assert _deletes(statements) == [1, 2, 3, 4, 5, 6, 7]
    assert any("idx <= 4" in sql for sql in _selects(statements))
    assert [i for i, _ in backend.entries_after(0)] == [8]
    backend.close()
    assert _rows(path) == [8]


def test_past_the_kept_sizes_the_rows_are_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_log, "_APPENDED_MAX", 3)
    path = tmp_path / "state.db"
    backend = SqliteLog(str(path))
    for i in range(1, 11):
        backend.append([(i, bytes(100))])
    assert len(backend._appended) <= 4
    backend.save_snapshot(9, [b"chunk"])
    assert [i for i, _ in backend.entries_after(0)] == [10]
    assert not backend._appended or backend._appended[0][0] == 10
    backend.close()
    assert _rows(path) == [10]
