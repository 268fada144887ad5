"""Reported allocs share their repeated strings; their values and wire form do not change."""

import msgspec
import pytest
from state_fixtures import alloc, evaluation, job, node

from yurt.state import AllocClientUpdate, AllocUpdate, JobRegister, NodeRegister, PlanApply, StateStore
from yurt.structs import TaskState, encode, share_task_states, shared_str
from yurt.structs import alloc as alloc_module


def _update_body(ids: list[str], now: int) -> bytes:
    """What a client sends (as bench/simnode.py and the real client do): one body per alloc."""
    states = {"t": {"State": "running", "Failed": False, "Restarts": 0, "StartedAt": "2026-11-27T01:02:03.5Z",
                    "Events": [{"Type": "Started", "Time": now, "DisplayMessage": "Task started by client",
                                "Details": {"k": "v"}, "ExitCode": 0}]}}
    return msgspec.json.encode({"Allocs": [{"ID": i, "ClientStatus": "running", "ClientDescription": "Tasks are running",
                                            "TaskStates": states} for i in ids]})


def _decode(raw: bytes) -> list[AllocUpdate]:
    body = msgspec.defstruct("Body", [("Allocs", list[AllocUpdate])])
    return msgspec.json.decode(raw, type=body).Allocs


@pytest.fixture
def world():
    store = StateStore.open(None)
    j, n = job(count=3), node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    j = store.snapshot().job_by_id("default", "web")
    allocs = [alloc(j, n.id, ev.id, idx=i) for i in range(3)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: allocs}))
    yield store, [a.id for a in allocs]
    store.close()


def test_reported_task_states_are_stored_equal_and_encode_byte_identical(world):
    store, ids = world
    raws = [_update_body([i], now=1000 + k) for k, i in enumerate(ids)]
    expected = [encode(_decode(raw)[0].task_states) for raw in raws]  # as decoded, before any sharing
    for raw in raws:
        store.apply(AllocClientUpdate(allocs=_decode(raw)))
    stored = [store.snapshot().alloc_by_id(i) for i in ids]
    assert [encode(a.task_states) for a in stored] == expected
    assert [a.task_states["t"].events[0].time for a in stored] == [1000, 1001, 1002]
    # the repeated strings are one object each, across allocs reported separately
    first, *rest = stored
    for other in rest:
        assert other.client_status is first.client_status
        assert other.client_description is first.client_description
        assert other.task_states["t"].state is first.task_states["t"].state
        e0, e1 = first.task_states["t"].events[0], other.task_states["t"].events[0]
        assert e1.type is e0.type and e1.display_message is e0.display_message
        assert e1 is not e0  # each alloc keeps its own event (its own time)


def test_share_task_states_keeps_values_and_fits_the_events_list():
    raw = _update_body(["a"], now=5)
    states = _decode(raw)[0].task_states
    before = encode(states)
    events = states["t"].events
    assert share_task_states(states) is states
    assert encode(states) == before
    assert states["t"].events == events and states["t"].events is not events
    assert share_task_states(None) is None and share_task_states({}) == {}
    again = _decode(raw)[0].task_states
    share_task_states(again)
    assert again["t"].events[0].display_message is states["t"].events[0].display_message


def test_shared_strings_are_bounded(monkeypatch):
    monkeypatch.setattr(alloc_module, "_shared", {})
    monkeypatch.setattr(alloc_module, "_SHARED_MAX", 2)
    a, b = shared_str("x" * 3), shared_str("y" * 3)
    assert shared_str("".join(["x"] * 3)) is a and shared_str("".join(["y"] * 3)) is b
    c = "".join(["z"] * 3)
    assert shared_str(c) is c and len(alloc_module._shared) == 2  # full: returned as is, not kept
    assert shared_str("".join(["z"] * 3)) is not c


def test_task_state_defaults_are_untouched():
    states = {"t": TaskState()}
    share_task_states(states)
    assert states["t"] == TaskState() and states["t"].events is None


def test_restored_allocs_share_repeated_strings_and_resources_and_encode_as_saved(tmp_path):
    from yurt.structs import AllocatedResources, AllocatedTaskResources

    store = StateStore.open(str(tmp_path), snapshot_every=0)
    j, n = job(count=3), node()
    ev = evaluation(j)
    store.apply_batch([NodeRegister(node=n), JobRegister(job=j, eval=ev)])
    j = store.snapshot().job_by_id("default", "web")
    res = AllocatedResources(tasks={"t": AllocatedTaskResources()})
    allocs = [alloc(j, n.id, ev.id, idx=i, allocated_resources=res) for i in range(3)]
    store.apply(PlanApply(eval_id=ev.id, job=j, node_allocation={n.id: allocs}))
    ids = [a.id for a in allocs]
    for k, i in enumerate(ids):
        store.apply(AllocClientUpdate(allocs=_decode(_update_body([i], now=10 + k))))
    saved = [encode(store.snapshot().alloc_by_id(i)) for i in ids]
    store.write_snapshot()
    store.close()
    reopened = StateStore.open(str(tmp_path))
    try:
        restored = [reopened.snapshot().alloc_by_id(i) for i in ids]
        assert [encode(a) for a in restored] == saved
        first, *rest = restored
        for other in rest:
            for field in ("node_id", "eval_id", "job_id", "namespace", "task_group", "client_status"):
                assert getattr(other, field) is getattr(first, field), field
            assert other.allocated_resources is first.allocated_resources
            assert other.desired_transition is first.desired_transition
            assert other.task_states["t"].events[0].type is first.task_states["t"].events[0].type
            assert other.id is not first.id and other.name != first.name
    finally:
        reopened.close()
