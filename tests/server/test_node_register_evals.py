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


def _system_jobs(server, count):
    for i in range(count):
        server.state.apply(JobRegister(job=evolve(mock_job(id=f"sys-{i}"), type="system")))


def test_registers_of_distinct_nodes_share_one_transaction_each_with_its_own_indexes():
    from yurt.server.endpoints import EndpointError
    from yurt.server.endpoints.nodes import register_nodes

    server = _Server()
    _system_jobs(server, 2)
    appends_before = len(server.log.appends)
    ready = [evolve(mock_node(), status="ready") for _ in range(3)]
    init = evolve(mock_node(), status="initializing")
    nameless = evolve(mock_node(), name="")
    results = register_nodes(server, [ready[0], nameless, ready[1], init, ready[2]])
    assert len(server.log.appends) == appends_before + 1  # one transaction for the four valid ones
    assert isinstance(results[1], EndpointError) and "missing node name" in str(results[1])
    snap = server.state.snapshot()
    for node, result in zip(ready, (results[0], results[2], results[4])):
        stored = snap.node_by_id(node.id)
        evals = [e for e in snap.evals() if e.node_id == node.id]
        assert sorted(e.job_id for e in evals) == ["sys-0", "sys-1"]
        assert {e.node_modify_index for e in evals} == {stored.modify_index}
        assert {e.create_index for e in evals} == {result[0]}
    # the group's evals are one command after its nodes: every register's reply carries its index
    eval_index = snap.node_by_id(ready[2].id).modify_index + 1
    assert {r[0] for r in (results[0], results[2], results[4])} == {eval_index}
    assert snap.node_by_id(ready[0].id).modify_index < snap.node_by_id(ready[1].id).modify_index < eval_index
    assert results[3][0] == snap.node_by_id(init.id).modify_index
    assert snap.node_by_id(nameless.id) is None
    assert results[4][0] == snap.index


def test_a_node_registering_twice_in_a_batch_is_written_in_order():
    from yurt.server.endpoints import EndpointError
    from yurt.server.endpoints.nodes import register_nodes

    server = _Server()
    _system_jobs(server, 1)
    first = evolve(mock_node(), status="initializing")
    again = evolve(first, status="ready")
    forged = evolve(first, secret_id="other")
    results = register_nodes(server, [first, again, forged])
    snap = server.state.snapshot()
    assert snap.node_by_id(first.id).status == "ready"
    assert [e.node_id for e in snap.evals()] == [first.id]  # initializing -> ready: one eval
    assert results[0][0] < results[1][0]
    assert isinstance(results[2], EndpointError) and "secret ID does not match" in str(results[2])


def test_registers_of_one_loop_turn_are_batched():
    import asyncio

    from yurt.server.endpoints.nodes import submit_register

    server = _Server()
    _system_jobs(server, 1)
    appends_before = len(server.log.appends)
    nodes = [evolve(mock_node(), status="ready") for _ in range(5)]

    async def main():
        return await asyncio.gather(*(submit_register(server, n) for n in nodes))

    results = asyncio.run(main())
    assert len(server.log.appends) == appends_before + 1
    snap = server.state.snapshot()
    assert [r[0] for r in results] == [snap.node_by_id(nodes[-1].id).modify_index + 1] * len(nodes)
    evals = list(snap.evals())
    assert sorted(e.node_id for e in evals) == sorted(n.id for n in nodes)
    assert {e.create_index for e in evals} == {results[0][0]}


def test_a_system_job_outside_the_nodes_datacenters_or_pool_gets_no_eval():
    # as Nomad's createNodeEvals: only system jobs that may run on the node
    server = _Server()
    jobs = {"here": {}, "other-dc": {"datacenters": ["dc2"]}, "dc-glob": {"datacenters": ["dc*"]},
            "other-pool": {"node_pool": "gpu"}, "all-pools": {"node_pool": "all"}}
    for job_id, fields in jobs.items():
        server.state.apply(JobRegister(job=evolve(mock_job(id=job_id), type="system", **fields)))
    node = evolve(mock_node(), status="ready")  # dc1, pool default
    register_node(server, node)
    evals = [e for e in server.state.snapshot().evals() if e.node_id == node.id]
    assert sorted(e.job_id for e in evals) == ["all-pools", "dc-glob", "here"]
    assert len({e.id for e in evals}) == 3
