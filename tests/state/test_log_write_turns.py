"""`SqliteLog` appends: one entry is one autocommit INSERT, several one transaction; the write
turns keep appends ahead of the snapshot writer's transactions either way."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from yurt.state.sqlite import SqliteLog


def _rows(path: str) -> list[tuple[int, bytes]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT idx, command FROM log ORDER BY idx").fetchall()
    finally:
        conn.close()


def test_a_single_entry_is_committed_when_append_returns(tmp_path):
    log = SqliteLog.in_data_dir(str(tmp_path))
    try:
        log.append([(1, b"one")])
        log.append([(2, b"two"), (3, b"three")])
        log.append([(4, b"four")])
        # another connection (another process after a crash would open one) sees all of it
        assert _rows(log.path) == [(1, b"one"), (2, b"two"), (3, b"three"), (4, b"four")]
        assert not log._conn.in_transaction
    finally:
        log.close()


def test_a_failed_single_append_changes_nothing_and_frees_the_turn(tmp_path):
    log = SqliteLog.in_data_dir(str(tmp_path))
    try:
        log.append([(1, b"one")])
        with pytest.raises(sqlite3.IntegrityError):
            log.append([(1, b"again")])
        assert not log._conn.in_transaction
        log.append([(2, b"two")])  # the turn was given back
        done = threading.Event()
        threading.Thread(target=lambda: (log.save_snapshot(2, iter([b"s"])), done.set())).start()
        assert done.wait(30), "the snapshot writer never got a turn"
        assert list(log.entries_after(0)) == []
        assert log.latest_snapshot()[0] == 2
    finally:
        log.close()


def test_an_append_waiting_goes_before_the_next_background_turn(tmp_path):
    log = SqliteLog.in_data_dir(str(tmp_path))
    turns = log._turns
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def background(name, hold=False):
        with turns.background():
            order.append(name)
            if hold:
                holding.set()
                release.wait(30)

    try:
        first = threading.Thread(target=background, args=("background-1", True))
        first.start()
        assert holding.wait(30)
        appender = threading.Thread(target=lambda: (log.append([(1, b"x")]), order.append("append")))
        appender.start()
        while not turns._appends_waiting:  # the append announced itself (the slow path)
            appender.join(0.001)
        second = threading.Thread(target=background, args=("background-2",))
        second.start()
        release.set()
        for t in (first, appender, second):
            t.join(30)
        assert order == ["background-1", "append", "background-2"]
        assert turns._appends_waiting == 0
        assert list(log.entries_after(0)) == [(1, b"x")]
    finally:
        release.set()
        log.close()
