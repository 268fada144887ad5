"""`PUT /v1/internal/allocs/update` decodes a request straight into `AllocUpdate`s when that
gives exactly what the lenient path (`read_json` + `wire.convert`, nulls dropped) gives;
otherwise the lenient path decides (and words the errors)."""

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yurt.http import routes_internal
from yurt.http.routes_internal import _nulls_are_defaults, decode_alloc_updates
from yurt.http.wire import convert
from yurt.server.endpoints import EndpointError
from yurt.state.commands import AllocUpdate


def _lenient(body):
    raw = body.get("Allocs") if isinstance(body, dict) else None
    if not raw:
        raise EndpointError(400, "must update at least one allocation")
    return convert(raw, list[AllocUpdate], "alloc updates")


def test_the_direct_decoder_is_in_use():
    assert routes_internal._UPDATE_DECODER is not None
    assert routes_internal._UPDATE_DECODER[1] == ("network_status",)


def test_the_check_refuses_types_where_a_null_would_mean_something_else():
    mi = msgspec.inspect

    class DefaultNotNone(msgspec.Struct):
        x: int | None = 5

    class NullableItems(msgspec.Struct):
        x: list[int | None] = []

    class AnyValues(msgspec.Struct):
        x: dict[str, object] | None = None

    class Fine(msgspec.Struct):
        x: int | None = None
        y: list[str] = []
        z: dict[str, int] | None = None

    for bad in (DefaultNotNone, NullableItems, AnyValues):
        assert not _nulls_are_defaults(mi.type_info(bad), set()), bad
    assert _nulls_are_defaults(mi.type_info(Fine), set())


_scalar = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3), st.booleans())
_event = st.fixed_dictionaries({}, optional={
    "Type": st.one_of(st.none(), st.sampled_from(["Started", "Terminated"])),
    "Time": st.one_of(st.none(), st.integers(0, 10**12)),
    "Details": st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b"]), st.one_of(st.none(), st.text(max_size=2)))),
    "ExitCode": _scalar,
})
_task_state = st.fixed_dictionaries({}, optional={
    "State": st.one_of(st.none(), st.sampled_from(["running", "dead"])),
    "Failed": st.one_of(st.none(), st.booleans()),
    "StartedAt": st.one_of(st.none(), st.just("2026-01-01T00:00:00Z")),
    "FinishedAt": st.none(),
    "Events": st.one_of(st.none(), st.lists(st.one_of(st.none(), _event), max_size=2)),
})
_update = st.fixed_dictionaries({}, optional={
    "ID": st.one_of(st.none(), st.sampled_from(["a1", "a2"])),
    "ClientStatus": st.one_of(st.none(), st.sampled_from(["running", "complete", "failed"])),
    "ClientDescription": _scalar,
    "TaskStates": st.one_of(st.none(), st.dictionaries(st.sampled_from(["t", "u"]), st.one_of(st.none(), _task_state),
                                                       max_size=2)),
    "DeploymentStatus": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "Healthy": st.one_of(st.none(), st.booleans()), "Canary": st.one_of(st.none(), st.booleans())})),
    "NetworkStatus": st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "y"]),
                                                          st.one_of(_scalar, st.lists(_scalar, max_size=2)))),
    "Unknown": _scalar,
})
_body = st.one_of(
    st.fixed_dictionaries({"Allocs": st.one_of(st.none(), st.lists(st.one_of(st.none(), _update), max_size=3))}),
    _scalar,
)


@settings(max_examples=300, deadline=None)
@given(_body)
def test_direct_decode_equals_the_lenient_path_whenever_it_applies(body):
    raw = json.dumps(body).encode()
    direct = decode_alloc_updates(raw)
    try:
        lenient = _lenient(msgspec.json.decode(raw))
    except EndpointError:
        assert direct is None  # the lenient path words the error
        return
    if direct is not None:
        assert direct == lenient


def test_the_fleet_body_takes_the_direct_path():
    body = {"Allocs": [{"ID": "a1", "ClientStatus": "running", "ClientDescription": "",
                        "TaskStates": {"t": {"State": "running", "Failed": False, "Restarts": 0,
                                             "StartedAt": "2026-01-01T00:00:00Z",
                                             "Events": [{"Type": "Started", "Time": 1}]}},
                        "DeploymentStatus": None, "NetworkStatus": None}]}
    raw = json.dumps(body).encode()
    direct = decode_alloc_updates(raw)
    assert direct is not None and direct == _lenient(body)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"Allocs": []}', b'{"Allocs": null}', b'{"Allocs": [{"ID": null}]}'])
def test_what_the_direct_decode_leaves_to_the_lenient_path(raw):
    assert decode_alloc_updates(raw) is None


def test_nulls_inside_network_status_are_dropped_as_the_lenient_path_does():
    body = {"Allocs": [{"ID": "a1", "ClientStatus": "running", "DeploymentStatus": None,
                        "NetworkStatus": {"x": None, "y": [1, None], "z": {"w": None}},
                        "TaskStates": {"t": {"State": "running", "FinishedAt": None, "Events": None}}}]}
    direct = decode_alloc_updates(json.dumps(body).encode())
    assert direct is not None and direct == _lenient(body)
    assert direct[0].network_status == {"y": [1], "z": {}}
