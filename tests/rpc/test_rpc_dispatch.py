"""The RPC listener's dispatch (`yurt.rpc.server.RPCServer.dispatch`) without sockets: the
client's steady requests (alloc watch, heartbeat, status update) are answered without a task
per request; a blocking watch waits as a change-watcher callback, is answered by the write
that gives it something to answer, not by a status report, at the end of its wait, and stops
waiting when its connection is lost; status updates decode straight into `AllocUpdate`s."""

import asyncio
import time

import msgspec
import pytest

from yurt.rpc import decode_reply_raw, frame
from yurt.rpc.server import RPCServer, _Connection, _decode_updates
from yurt.server.endpoints.allocs import AllocUpdateBatcher
from yurt.state.commands import AllocClientUpdate, AllocUpdate, JobRegister, NodeRegister, PlanApply
from yurt.state.store import StateStore
from yurt.structs.codec import from_wire
from yurt.testing.mock import mock_alloc, mock_job, mock_node


class _Transport:
    def __init__(self):
        self.replies: list = []

    def write(self, data):
        rep = decode_reply_raw(data[4:])
        self.replies.append((rep.seq, rep.status, rep.index, msgspec.msgpack.decode(rep.body)))

    def get_extra_info(self, name, default=None):
        return default

    def close(self):
        pass


class _Config:
    region = "global"


class _Heartbeats:
    def reset(self, node_id):
        return 10.0


class _Server:
    def __init__(self, state):
        self.state = state
        self.config = _Config()
        self.leadership = None
        self.leader = True
        self.heartbeats = _Heartbeats()
        self.alloc_updates = AllocUpdateBatcher(self, 0.0, time.time_ns)


class _Cluster:
    def __init__(self):
        self.store = StateStore.open(None)
        self.server = _Server(self.store)
        self.rpc = RPCServer(self.server)
        self.transport = _Transport()
        self.conn = _Connection(self.rpc)
        self.conn.connection_made(self.transport)
        self.node = mock_node()
        self.store.apply(NodeRegister(node=self.node))
        job = mock_job(id="web")
        self.store.apply(JobRegister(job=job, submit_time=1))
        self.job = self.store.snapshot().job_by_id(job.namespace, job.id)
        self.seq = 0

    def send(self, method, path, params=None, body=None) -> int:
        self.seq += 1
        self.conn.data_received(frame((self.seq, method, path, params, body)))
        return self.seq

    def watch(self, index: int, known: int, wait: str = "300s") -> int:
        return self.send("GET", f"/v1/internal/node/{self.node.id}/allocs",
                         {"index": str(index), "wait": wait, "delta": "1", "known": str(known)})

    def place(self, n: int = 0):
        alloc = mock_alloc(self.job, self.node, index=n)
        self.store.apply(PlanApply(eval_id="e", job=self.job, updated_at=1, node_allocation={self.node.id: [alloc]}))
        return alloc

    def reply_to(self, seq: int):
        found = [r for r in self.transport.replies if r[0] == seq]
        return found[0] if found else None


async def _turns(n: int = 5):
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_watch_waits_as_a_callback_and_only_a_write_it_can_see_answers_it():
    c = _Cluster()
    first = c.watch(0, 0)  # index 0: answered at once
    (_, status, index, body) = c.reply_to(first)
    assert status == 200 and body == {"Total": 0, "Changed": []}
    seq = c.watch(index, 0)
    await _turns()
    assert c.reply_to(seq) is None
    assert not c.conn.tasks, "the watch waits without a task"
    assert c.store._watchers.waiting() == 1 and len(c.conn.watches) == 1
    alloc = c.place()
    await _turns()
    (_, status, index, body) = c.reply_to(seq)
    assert status == 200 and body["Total"] == 1 and [a["ID"] for a in body["Changed"]] == [alloc.id]
    assert body["Changed"][0]["Job"]["ID"] == "web"
    assert not c.conn.watches and c.store._watchers.waiting() == 1, "the node stays watched for the next one"
    assert all(not bucket for bucket in c.rpc._deadlines.values())

    seq = c.watch(index, 1)
    c.store.apply(AllocClientUpdate(allocs=[AllocUpdate(id=alloc.id, client_status="running")], updated_at=2))
    await _turns()
    assert c.reply_to(seq) is None, "a status report changes nothing the node would see"
    assert c.store._watchers.waiting() == 1 and len(c.conn.watches) == 1, "woken by the report, it waits on"
    second = c.place(1)
    await _turns()
    (_, status, _, body) = c.reply_to(seq)
    assert status == 200 and body["Total"] == 2 and [a["ID"] for a in body["Changed"]] == [second.id]


async def test_a_watch_answers_at_the_end_of_its_wait():
    c = _Cluster()
    index = max(c.store.snapshot().table_index("allocs:node:" + c.node.id), 1)  # as a reply says
    seq = c.watch(index, 0, wait="200ms")
    await _turns()
    assert c.reply_to(seq) is None and c.store._watchers.waiting() == 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while c.reply_to(seq) is None and loop.time() < deadline:
        await asyncio.sleep(0.02)
    (_, status, got_index, body) = c.reply_to(seq)
    assert status == 200 and body == {"Total": 0, "Changed": []} and got_index == max(index, 1)
    assert not c.rpc._deadlines and not c.conn.watches and c.store._watchers.waiting() == 1


async def test_a_lost_connection_stops_its_watches():
    c = _Cluster()
    index = max(c.store.snapshot().table_index("allocs:node:" + c.node.id), 1)
    c.watch(index, 0)
    c.watch(index, 0)
    assert c.store._watchers.waiting() == 1 and len(c.conn.watches) == 2  # one watch of the node
    c.conn.connection_lost(None)
    assert c.store._watchers.waiting() == 0 and not c.conn.watches
    assert all(not bucket for bucket in c.rpc._deadlines.values())
    c.place()
    await _turns()
    assert len(c.transport.replies) == 0


async def test_heartbeats_and_status_updates_are_answered_without_a_task():
    c = _Cluster()
    beat = c.send("PUT", f"/v1/internal/node/{c.node.id}/heartbeat", None, {"Status": "ready"})
    (_, status, _, body) = c.reply_to(beat)
    assert status == 200 and body["HeartbeatTTL"] == 10_000_000_000
    missing = c.send("PUT", "/v1/internal/node/nope/heartbeat", None, {"Status": "ready"})
    assert c.reply_to(missing)[1:] == (404, 0, "node not found")
    alloc = c.place()
    upd = c.send("PUT", "/v1/internal/allocs/update", None,
                 {"Allocs": [{"ID": alloc.id, "ClientStatus": "running", "TaskStates": None}]})
    assert not c.conn.tasks
    await _turns()
    (_, status, index, body) = c.reply_to(upd)
    assert status == 200 and body == {"Index": index} and index == c.store.snapshot().index
    assert c.store.snapshot().alloc_by_id(alloc.id).client_status == "running"
    gone = c.send("PUT", "/v1/internal/allocs/update", None, {"Allocs": [{"ID": "gone", "ClientStatus": "running"}]})
    await _turns()
    # an alloc the server no longer has: skipped, answered by the flush, which commits nothing
    assert c.reply_to(gone)[1:] == (200, index, {"Index": index}) and c.store.snapshot().index == index
    assert not c.conn.tasks


_BODIES = [
    {"Allocs": [{"ID": "a1", "ClientStatus": "running", "ClientDescription": "",
                 "TaskStates": {"web": {"State": "running", "Failed": False, "Restarts": 2,
                                        "StartedAt": "2026-11-27T08:00:00Z",
                                        "Events": [{"Type": "Started", "Time": 5, "Details": {"a": "b"}}]}},
                 "DeploymentStatus": {"Healthy": True}, "NetworkStatus": {"Address": "10.0.0.1"}}]},
    {"Allocs": [{"ID": "a2", "ClientStatus": "failed"}, {"ID": "a3", "ClientStatus": "complete", "Extra": 1}]},
]


@pytest.mark.parametrize("body", _BODIES)
def test_status_updates_decode_straight_as_the_lenient_path_decodes_them(body):
    assert _decode_updates(msgspec.msgpack.encode(body)).Allocs == from_wire(body["Allocs"], list[AllocUpdate])


@pytest.mark.parametrize("body, text", [
    ({"Allocs": [{"ID": 5}]}, None),
    ({"Allocs": []}, "must update at least one allocation"),
    ({"Other": 1}, "must update at least one allocation"),
    ([1, 2], "must update at least one allocation"),
    (None, "must update at least one allocation"),
])
async def test_bad_status_updates_are_refused_as_the_lenient_path_refuses_them(body, text):
    c = _Cluster()
    seq = c.send("PUT", "/v1/internal/allocs/update", None, body)
    (_, status, _, got) = c.reply_to(seq)
    if text is None:  # the type error of `from_wire`, word for word
        with pytest.raises(msgspec.ValidationError) as exc:
            from_wire(body["Allocs"], list[AllocUpdate])
        text = str(exc.value)
    assert (status, got) == (400, text)
