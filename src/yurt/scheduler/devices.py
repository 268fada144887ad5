"""Devices: matching a task's `device "vendor/type/model"` asks to a node's device groups,
choosing instances, and the pure arithmetic around it (Nomad's device allocator).

- A request name is `type`, `vendor/type` or `vendor/type/model`; it matches a node device
  group whose fields are equal for the parts given.
- Device constraints and affinities resolve `${device.vendor|type|model|ids}` and
  `${device.attr.<name>}` against the group; attributes compare unit-aware ("16 GiB" >= "2 GiB").
- A group can serve a request when it has at least `count` healthy instances (feasibility,
  "missing devices") and at least `count` of those unassigned (else the node is exhausted on
  "devices: <name>"). Among the groups that can, the one with the best affinity score wins.
- Assigned instances go to `AllocatedResources.Tasks[t].Devices` as Nomad's
  `{Vendor, Type, Name, DeviceIDs}`; an instance is never assigned twice on a node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from yurt.structs import Node, TaskGroup, evolve
from yurt.structs.job import Affinity, Constraint, RequestedDevice
from yurt.structs.node import Attribute, NodeDeviceResource
from yurt.structs.resources import alloc_device_ids, device_key

from .constraints import OP_IS_NOT_SET, OP_IS_SET, check_operator

REASON_MISSING_DEVICES = "missing devices"
DIM_DEVICES = "devices"

# unit -> (family, multiplier to the family's base unit)
_UNITS: dict[str, tuple[str, float]] = {}
for _fam, _base, _table in (
    ("bytes", "B", (("K", 1e3), ("Ki", 2.0**10), ("M", 1e6), ("Mi", 2.0**20), ("G", 1e9), ("Gi", 2.0**30),
                    ("T", 1e12), ("Ti", 2.0**40), ("P", 1e15), ("Pi", 2.0**50), ("E", 1e18), ("Ei", 2.0**60))),
    ("byterate", "B/s", (("K", 1e3), ("Ki", 2.0**10), ("M", 1e6), ("Mi", 2.0**20), ("G", 1e9), ("Gi", 2.0**30),
                         ("T", 1e12), ("Ti", 2.0**40))),
    ("hertz", "Hz", (("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12))),
    ("watts", "W", (("m", 1e-3), ("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9))),
):
    _UNITS[_base] = (_fam, 1.0)
    for _prefix, _mult in _table:
        _UNITS[_prefix + _base] = (_fam, _mult)

_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)\s*$")


def parse_attribute(value: object) -> Attribute:
    """A config or constraint value as an Attribute: bools, ints and floats with an optional
    known unit ("16 GiB", "1.5GHz"); anything else is a string."""
    if isinstance(value, bool):
        return Attribute(bool_val=value)
    if isinstance(value, int):
        return Attribute(int_val=value)
    if isinstance(value, float):
        return Attribute(float_val=value)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return Attribute(bool_val=text.lower() == "true")
    m = _NUMBER_UNIT.match(text)
    if m and (not m.group(2) or m.group(2) in _UNITS):
        number, unit = m.group(1), m.group(2)
        try:
            return Attribute(int_val=int(number), unit=unit)
        except ValueError:
            return Attribute(float_val=float(number), unit=unit)
    return Attribute(string_val=text)


def attribute_text(a: Attribute) -> str:
    for v in (a.string_val, a.int_val, a.float_val):
        if v is not None:
            return f"{v} {a.unit}".strip() if a.unit and not isinstance(v, str) else str(v)
    return "true" if a.bool_val else "false" if a.bool_val is not None else ""


def _numeric(a: Attribute) -> float | None:
    return float(a.int_val) if a.int_val is not None else a.float_val


def compare_attributes(op: str, left: Attribute | None, right: Attribute | None) -> bool:
    """`left op right` with numbers converted to a common unit; strings and the other
    operators (regexp, version, set_contains...) as node constraints compare them."""
    if op == OP_IS_SET:
        return left is not None
    if op == OP_IS_NOT_SET:
        return left is None
    lnum = _numeric(left) if left is not None else None
    rnum = _numeric(right) if right is not None else None
    if lnum is not None and rnum is not None and op in ("=", "==", "is", "!=", "not", "<", "<=", ">", ">="):
        lunit, runit = left.unit or right.unit, right.unit or left.unit
        lfam, lmul = _UNITS.get(lunit, ("", 1.0))
        rfam, rmul = _UNITS.get(runit, ("", 1.0))
        if lfam != rfam:
            return op in ("!=", "not")
        a, b = lnum * lmul, rnum * rmul
        return {"=": a == b, "==": a == b, "is": a == b, "!=": a != b, "not": a != b,
                "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    ltext = attribute_text(left) if left is not None else None
    rtext = attribute_text(right) if right is not None else None
    return check_operator(op or "=", ltext, rtext, left is not None, right is not None)


def _resolve(target: str, dev: NodeDeviceResource) -> Attribute | None:
    """`${device.model}` etc. against a device group; a literal is parsed as an Attribute."""
    t = target.strip()
    if not (t.startswith("${") and t.endswith("}")):
        return parse_attribute(t) if t else None
    key = t[2:-1]
    if key == "device.vendor":
        return Attribute(string_val=dev.vendor)
    if key == "device.type":
        return Attribute(string_val=dev.type)
    if key == "device.model":
        return Attribute(string_val=dev.name)
    if key == "device.ids":
        return Attribute(string_val=",".join(i.id for i in dev.instances or ()))
    if key.startswith("device.attr."):
        return (dev.attributes or {}).get(key[len("device.attr."):])
    return None


def constraint_holds(c: Constraint | Affinity, dev: NodeDeviceResource) -> bool:
    return compare_attributes(c.operand or "=", _resolve(c.l_target, dev), _resolve(c.r_target, dev))


def name_matches(name: str, dev: NodeDeviceResource) -> bool:
    """`type`, `vendor/type` or `vendor/type/model`."""
    parts = name.split("/", 2)
    if len(parts) == 1:
        return parts[0] == dev.type
    if len(parts) == 2:
        return parts[0] == dev.vendor and parts[1] == dev.type
    return parts[0] == dev.vendor and parts[1] == dev.type and parts[2] == dev.name


def group_matches(req: RequestedDevice, dev: NodeDeviceResource) -> bool:
    return name_matches(req.name, dev) and all(constraint_holds(c, dev) for c in req.constraints or ())


def _healthy_ids(dev: NodeDeviceResource) -> list[str]:
    return sorted(i.id for i in dev.instances or () if i.healthy)


def used_instances(allocs) -> dict[tuple[str, str, str], set[str]]:
    """Instances held by the non-terminal `allocs`."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for alloc in allocs:
        if alloc.terminal:
            continue
        for key, ids in alloc_device_ids(alloc).items():
            out.setdefault(key, set()).update(ids)
    return out


def tracker_used(tracker, node_id: str, exclude: frozenset[str] = frozenset()):
    """Instances held on a node under the plan being built (`usage.UsageTracker`): its live
    allocs minus the plan's stops (and `exclude`, allocs about to be preempted) plus placements."""
    stopped = tracker.stopped.get(node_id, ())
    allocs = [a for a in tracker.snapshot.allocs_by_node(node_id) if a.id not in stopped and a.id not in exclude]
    return used_instances([*allocs, *tracker.placed.get(node_id, ())])


@dataclass(slots=True)
class TaskAsk:
    task: str
    request: RequestedDevice


def group_asks(tg: TaskGroup) -> list[TaskAsk]:
    return [TaskAsk(t.name, r) for t in tg.tasks or () if t.resources for r in t.resources.devices or ()]


@dataclass
class DeviceFit:
    """The result of assigning a group's device asks on one node."""

    ok: bool
    devices: dict[str, list[dict]] = field(default_factory=dict)  # task -> AllocatedDeviceResource
    score: float | None = None  # device affinity score, None without device affinities
    missing: bool = False  # no group could ever serve a request (feasibility)
    name: str = ""  # the request that failed
    need: int = 0
    most_free: int = 0
    shortfall: dict[tuple[str, str, str], int] = field(default_factory=dict)  # for preemption

    @property
    def dimension(self) -> str:
        return f"{DIM_DEVICES}: {self.name}"


def _affinity(req: RequestedDevice, dev: NodeDeviceResource) -> float:
    return sum(a.weight for a in req.affinities or () if constraint_holds(a, dev))


def fit_devices(node: Node, asks: list[TaskAsk], used: dict[tuple[str, str, str], set[str]]) -> DeviceFit:
    """Pick instances for every ask on `node`, given the instances already `used`."""
    groups = (node.node_resources.devices if node.node_resources else None) or []
    taken = {k: set(v) for k, v in used.items()}
    total_weight = matched = 0.0
    out: dict[str, list[dict]] = {}
    for ask in asks:
        req = ask.request
        count = max(req.count, 1)
        candidates = [d for d in groups if group_matches(req, d) and len(_healthy_ids(d)) >= count]
        if not candidates:
            return DeviceFit(False, missing=True, name=req.name, need=count)
        best, best_free, best_score = None, [], 0.0
        most_free = 0
        for dev in candidates:
            free = [i for i in _healthy_ids(dev) if i not in taken.get(device_key(dev), ())]
            most_free = max(most_free, len(free))
            if len(free) < count:
                continue
            score = _affinity(req, dev)
            if best is None or score > best_score:
                best, best_free, best_score = dev, free, score
        if best is None:
            shortfall = {device_key(d): count - len([i for i in _healthy_ids(d) if i not in taken.get(device_key(d), ())])
                         for d in candidates}
            return DeviceFit(False, name=req.name, need=count, most_free=most_free, shortfall=shortfall)
        ids = best_free[:count]
        taken.setdefault(device_key(best), set()).update(ids)
        out.setdefault(ask.task, []).append(
            {"Vendor": best.vendor, "Type": best.type, "Name": best.name, "DeviceIDs": ids})
        weights = sum(abs(a.weight) for a in req.affinities or ())
        if weights:
            total_weight += weights
            matched += best_score
    return DeviceFit(True, devices=out, score=(matched / total_weight) if total_weight else None)


def with_devices(resources, devices: dict[str, list[dict]] | None):
    """`AllocatedResources` with the assigned devices in their tasks."""
    if not devices:
        return resources
    tasks = dict(resources.tasks)
    for name, devs in devices.items():
        if name in tasks:
            tasks[name] = evolve(tasks[name], devices=devs)
    return evolve(resources, tasks=tasks)

