"""The conformance suite every log backend runs: SQLite, and etcd on a real 3-member cluster
(skipped when etcd is not installed, unless YURT_REQUIRE_ETCD=1)."""

import itertools
import os
import threading

import pytest

from yurt.state.etcd import EtcdLog, NotLeaderError
from yurt.state.etcd.gateway import b64
from yurt.state.sqlite import SqliteLog

_prefixes = itertools.count()


@pytest.fixture(params=["sqlite", "etcd"])
def make_backend(request, tmp_path):
    opened = []
    prefix = f"/conformance/{os.getpid()}-{next(_prefixes)}"

    def make():
        if request.param == "sqlite":
            backend = SqliteLog.in_data_dir(str(tmp_path))
        else:
            backend = EtcdLog(request.getfixturevalue("etcd_endpoints"), prefix)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


def test_append_and_read_in_order(make_backend):
    b = make_backend()
    assert b.last_index() == 0 and list(b.entries_after(0)) == [] and b.latest_snapshot() is None
    b.append([(1, b"a"), (2, b"b")])
    b.append([(3, b"c")])
    assert list(b.entries_after(0)) == [(1, b"a"), (2, b"b"), (3, b"c")]
    assert list(b.entries_after(2)) == [(3, b"c")]
    assert b.last_index() == 3


def test_append_is_all_or_nothing(make_backend):
    b = make_backend()
    b.append([(1, b"a")])
    with pytest.raises(Exception):
        b.append([(2, b"b"), (1, b"duplicate")])
    assert list(b.entries_after(0)) == [(1, b"a")]


def test_entries_survive_reopening(make_backend):
    b = make_backend()
    b.append([(1, b"a"), (2, b"b")])
    b.close()
    again = make_backend()
    assert list(again.entries_after(0)) == [(1, b"a"), (2, b"b")]


def test_snapshot_truncates_the_log_and_newest_wins(make_backend):
    b = make_backend()
    b.append([(i, bytes([i])) for i in range(1, 11)])
    b.save_snapshot(4, [b"s4-0", b"s4-1"])
    b.save_snapshot(8, iter([b"s8-0", b"s8-1", b"s8-2"]))
    index, chunks = b.latest_snapshot()
    assert index == 8 and list(chunks) == [b"s8-0", b"s8-1", b"s8-2"]
    assert [i for i, _ in b.entries_after(0)] == [9, 10]
    b.close()
    again = make_backend()
    index, chunks = again.latest_snapshot()
    assert index == 8 and list(chunks) == [b"s8-0", b"s8-1", b"s8-2"]


def test_a_failed_snapshot_write_keeps_the_previous_one(make_backend):
    b = make_backend()
    b.append([(1, b"a"), (2, b"b"), (3, b"c")])
    b.save_snapshot(1, [b"one"])

    def broken():
        yield b"partial"
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError):
        b.save_snapshot(3, broken())
    index, chunks = b.latest_snapshot()
    assert index == 1 and list(chunks) == [b"one"]
    assert [i for i, _ in b.entries_after(0)] == [2, 3]


def test_snapshot_from_another_thread_while_appending(make_backend):
    b = make_backend()
    b.append([(i, b"x") for i in range(1, 101)])
    errors = []

    def snap():
        try:
            b.save_snapshot(100, (bytes(1000) for _ in range(200)))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    t = threading.Thread(target=snap)
    t.start()
    for i in range(101, 301):
        b.append([(i, b"y")])
    t.join()
    assert errors == []
    assert b.latest_snapshot()[0] == 100
    assert [i for i, _ in b.entries_after(0)] == list(range(101, 301))


def test_sqlite_unusable_path_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match=str(blocker / "server")):
        SqliteLog.in_data_dir(str(blocker))


def test_etcd_guarded_log_refuses_a_deposed_leader(etcd_endpoints):
    """Only the holder of the leader key at the revision it won with may append or snapshot."""
    prefix = f"/guard/{os.getpid()}"
    b = EtcdLog(etcd_endpoints, prefix, guarded=True)
    with pytest.raises(NotLeaderError):
        b.append([(1, b"a")])
    leader_key = prefix + "/leader"
    put = b._gw.call("/v3/kv/put", {"key": b64(leader_key), "value": b64("me")})
    b.set_guard(leader_key, int(put["header"]["revision"]))
    b.append([(1, b"a")])
    b._gw.call("/v3/kv/put", {"key": b64(leader_key), "value": b64("someone else")})  # re-elected
    with pytest.raises(NotLeaderError):
        b.append([(2, b"b")])
    with pytest.raises(NotLeaderError):
        b.save_snapshot(1, [b"s"])
    assert list(b.entries_after(0)) == [(1, b"a")] and b.latest_snapshot() is None
    b.close()


def test_etcd_log_is_readable_from_any_member_and_survives_one_member_loss(etcd_cluster):
    b = EtcdLog(etcd_cluster.endpoints, "/loss")
    b.append([(1, b"a")])
    etcd_cluster.kill_member(etcd_cluster.members[0])
    b.append([(2, b"b")])
    other = EtcdLog(etcd_cluster.endpoints[1:], "/loss")
    assert list(other.entries_after(0)) == [(1, b"a"), (2, b"b")] and other.last_index() == 2
    b.close()
    other.close()
