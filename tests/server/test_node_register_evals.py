"""register_node: the node and its node-update evals land in one log transaction, the
evals carrying the node's new modify index (Nomad's NodeModifyIndex)."""

from yurt.server.endpoints.nodes import register_node
from yurt.state.commands import EvalUpsert, JobRegister, NodeRegister
from yurt.state.store import StateStore
from yurt.structs import evolve
from yurt.testing.mock import mock_job, mock_node


class _Heartbeats:
    def reset(self, node_id):
        return 10.0


class _RecordingLog:
    """A log backend that keeps each append (one per transaction)."""

    def __init__(self):
        self.appends = []

    def append(self, entries):
        self.appends.append([index for index, _ in entries])

    def entries_after(self, index):
        return iter(())

    def last_index(self):
        return 0

    def latest_snapshot(self):
        return None

    def save_snapshot(self, index, chunks):
        pass

    def close(self):
        pass


class _Server:
    def __init__(self):
        self.log = _RecordingLog()
        self.state = StateStore.from_backend(self.log, snapshot_every=0)
        self.heartbeats = _Heartbeats()

    def now_ns(self):
        return 1_700_000_000_000_000_000


def test_register_writes_node_and_system_evals_together():
    server = _Server()
    for i in range(3):
        server.state.apply(JobRegister(job=evolve(mock_job(id=f"sys-{i}"), type="system")))
    server.state.apply(JobRegister(job=mock_job(id="web")))  # a service job with no alloc there: no eval
    batches = []
    server.state.add_listener(lambda index, cmd: batches.append((index, type(cmd).__name__)))
    appends_before = len(server.log.appends)
    node = evolve(mock_node(), status="ready")
    index, ttl_ns = register_node(server, node)
    assert [name for _, name in batches] == [NodeRegister.__name__, EvalUpsert.__name__]
    assert server.log.appends[appends_before:] == [[index for index, _ in batches]]  # one transaction
    snap = server.state.snapshot()
    stored = snap.node_by_id(node.id)
    evals = [e for e in snap.evals() if e.node_id == node.id]
    assert sorted(e.job_id for e in evals) == ["sys-0", "sys-1", "sys-2"]
    assert {e.node_modify_index for e in evals} == {stored.modify_index}
    assert {e.triggered_by for e in evals} == {"node-update"}
    assert index == snap.index == stored.modify_index + 1
    assert ttl_ns == 10 * 1_000_000_000


def test_register_of_a_node_still_initializing_makes_no_evals():
    server = _Server()
    server.state.apply(JobRegister(job=evolve(mock_job(id="sys"), type="system")))
    node = evolve(mock_node(), status="initializing")
    index, _ = register_node(server, node)
    snap = server.state.snapshot()
    assert [e for e in snap.evals() if e.node_id == node.id] == []
    assert index == snap.node_by_id(node.id).modify_index


def test_random_uuids_are_distinct_version_4_uuids():
    import uuid

    from yurt.server.endpoints.nodes import random_uuids

    ids = random_uuids(50)
    assert len(set(ids)) == 50
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
