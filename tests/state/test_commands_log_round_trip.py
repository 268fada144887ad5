"""Every command comes back from the log as it went in, field for field.

Each command type of `AnyCommand` is built with EVERY field, down through every nested
struct, list and dict, set to a value that is not the field's default; it must decode
equal from its log encoding. So a log encoding that drops a field, or omits one because it
looks like a default, or merges two, fails here for whichever command carries it (a new
field is covered without touching this file). The plan's allocs and metrics are also
checked field by field in `test_plan_log_round_trip.py`.
"""

from __future__ import annotations

import enum
import types
import typing

import msgspec
import pytest
from msgspec import structs

from yurt.state.commands import AnyCommand, AllocClientUpdate, AllocUpdate, decode_command, encode_command
from yurt.structs import TaskEvent, TaskState

_MAX_DEPTH = 60  # struct nesting (a job's task groups, tasks, resources, networks, ports...)


def _value(tp, path: str, depth: int):
    """A value of type `tp`, not empty, named after `path` where it is a string."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any or tp is dict:
        return {"k": path}
    if tp is list:
        return [path]
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)), path, depth)
    if origin is typing.Literal:
        return args[-1]
    if origin is list:
        return [_value(args[0], path + "[0]", depth)]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return (_value(args[0], path + "[0]", depth),)
        return tuple(_value(a, f"{path}[{i}]", depth) for i, a in enumerate(args))
    if origin in (set, frozenset):
        return origin([_value(args[0], path + "[0]", depth)])
    if origin is dict:
        return {_value(args[0], path + ".key", depth): _value(args[1], path + "{}", depth)}
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return full(tp, path, depth + 1)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[-1]
    if tp is bool:
        return True
    if tp is int:
        return 1000 + depth
    if tp is float:
        return 2.5
    if tp is str:
        return path
    if tp is bytes:
        return path.encode()
    raise TypeError(f"{path}: no test value for {tp!r}: add one here")


def _other(tp, value):
    """Another value of `tp` than `value` (used where the first choice is the default)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return not value
    if tp in (int, float):
        return value + 1
    if origin is typing.Literal:
        return next(a for a in args if a != value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(m for m in tp if m != value)
    raise TypeError(f"no other value of {tp!r} than its default {value!r}")


def _default(field):
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def full(cls, path: str | None = None, depth: int = 0):
    """An instance of struct `cls` whose every field differs from its default."""
    path = path or cls.__name__
    if depth > _MAX_DEPTH:
        raise RecursionError(f"{path}: nested deeper than {_MAX_DEPTH}")
    values = {}
    for field in structs.fields(cls):
        value = _value(field.type, f"{path}.{field.name}", depth)
        if value == _default(field):
            value = _other(field.type, value)
        values[field.name] = value
    return cls(**values)


def _assert_nothing_default(obj, path: str) -> int:
    """Every field of `obj` and of the structs inside it is set (not its default); returns how
    many fields were checked."""
    checked = 0
    if isinstance(obj, msgspec.Struct):
        for field in structs.fields(type(obj)):
            value = getattr(obj, field.name)
            assert value != _default(field), f"{path}.{field.name} is its default"
            checked += 1 + _assert_nothing_default(value, f"{path}.{field.name}")
    elif isinstance(obj, (list, tuple, set, frozenset)):
        checked += sum(_assert_nothing_default(v, path + "[]") for v in obj)
    elif isinstance(obj, dict):
        checked += sum(_assert_nothing_default(v, path + "{}") for v in obj.values())
    return checked


COMMANDS = typing.get_args(AnyCommand)


@pytest.mark.parametrize("cls", COMMANDS, ids=[c.__name__ for c in COMMANDS])
def test_every_field_of_every_command_round_trips(cls):
    command = full(cls)
    assert _assert_nothing_default(command, cls.__name__) >= len(structs.fields(cls))
    data = encode_command(command)
    assert msgspec.msgpack.decode(data)["type"] == cls.__name__
    back = decode_command(data)
    assert type(back) is cls
    assert back == command
    assert msgspec.to_builtins(back) == msgspec.to_builtins(command)


def test_client_updates_keep_every_task_state_and_event_field():
    """The client's task states and events (~570 B an alloc in W1, most of it fields at their
    defaults) come back whole, at their defaults too."""
    event = full(TaskEvent)
    state = full(TaskState)
    plain = TaskState(state="running", events=[TaskEvent(type="Started", time=5)])
    command = AllocClientUpdate(allocs=[
        AllocUpdate(id="a1", client_status="running", task_states={"web": state, "side": plain}),
        AllocUpdate(id="a2", client_status="failed", task_states={"web": TaskState(failed=True, events=[event])}),
    ], updated_at=9)
    back = decode_command(encode_command(command))
    assert back == command
    for want, got in zip(command.allocs, back.allocs, strict=True):
        for name, ts in want.task_states.items():
            for field in TaskState.__struct_fields__:
                assert getattr(got.task_states[name], field) == getattr(ts, field), (name, field)
            for e_want, e_got in zip(ts.events, got.task_states[name].events, strict=True):
                for field in TaskEvent.__struct_fields__:
                    assert getattr(e_got, field) == getattr(e_want, field), (name, field)


def test_a_dropped_field_is_caught():
    """The check above can fail: an encoding without one field of a nested struct does not
    decode to the command that was logged."""
    command = full(AllocClientUpdate)
    raw = msgspec.msgpack.decode(encode_command(command))
    del raw["allocs"][0]["TaskStates"][next(iter(raw["allocs"][0]["TaskStates"]))]["Events"][0]["Message"]
    back = decode_command(msgspec.msgpack.encode(raw))
    assert back != command
