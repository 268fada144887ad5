"""Nomad's job diff (`job plan -diff`, `/v1/job/:id/plan` with `Diff`): what changed
between the stored job and the submitted one, as Field/Object/TaskGroup/Task diffs."""

from typing import Any

from yurt.structs import Job, to_wire

# Fields that change on every register and are not part of the spec.
_META_FIELDS = {"Version", "SubmitTime", "CreateIndex", "ModifyIndex", "JobModifyIndex", "Status",
                "StatusDescription", "Stable", "Stop"}
_UPDATE_NAMES = {
    "ignore": "ignore", "place": "create", "stop": "destroy", "migrate": "migrate",
    "in_place_update": "in-place update", "destructive_update": "create/destroy update",
    "canary": "canary", "preemptions": "preemptions",
}


def spec_of(job: Job | None) -> dict[str, Any]:
    data = to_wire(job) if job is not None else {}
    return {k: v for k, v in data.items() if k not in _META_FIELDS}


def spec_changed(old: Job | None, new: Job) -> bool:
    return old is None or spec_of(old) != spec_of(new)


def _kind(old: Any, new: Any) -> str:
    if old is None and new is not None:
        return "Added"
    if new is None and old is not None:
        return "Deleted"
    return "Edited" if old != new else "None"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def object_diff(name: str, old: Any, new: Any) -> dict[str, Any] | None:
    """Diff two wire values (dicts or lists) into Nomad's ObjectDiff; None when equal."""
    if old == new:
        return None
    fields, objects = [], []
    if isinstance(old, list) or isinstance(new, list):
        old_items, new_items = old or [], new or []
        for i in range(max(len(old_items), len(new_items))):
            o = old_items[i] if i < len(old_items) else None
            n = new_items[i] if i < len(new_items) else None
            if isinstance(o, (dict, list)) or isinstance(n, (dict, list)):
                sub = object_diff(name, o, n)
                if sub:
                    objects.append(sub)
            elif o != n:
                fields.append(field_diff(name, o, n))
    else:
        o_map, n_map = old or {}, new or {}
        for key in sorted(set(o_map) | set(n_map)):
            o, n = o_map.get(key), n_map.get(key)
            if o == n:
                continue
            if isinstance(o, (dict, list)) or isinstance(n, (dict, list)):
                sub = object_diff(key, o, n)
                if sub:
                    objects.append(sub)
            else:
                fields.append(field_diff(key, o, n))
    return {"Type": _kind(old, new), "Name": name, "Fields": fields or None, "Objects": objects or None}


def field_diff(name: str, old: Any, new: Any) -> dict[str, Any]:
    kind = "Added" if old is None else "Deleted" if new is None else "Edited"
    return {"Type": kind, "Name": name, "Old": _text(old), "New": _text(new), "Annotations": None}


def _named_diffs(old_items: list | None, new_items: list | None, nested_key: str | None) -> list[dict]:
    """Diff lists of named things (task groups, tasks), matched by Name."""
    old_by = {i["Name"]: i for i in old_items or ()}
    new_by = {i["Name"]: i for i in new_items or ()}
    out = []
    for name in sorted(set(old_by) | set(new_by)):
        o, n = old_by.get(name), new_by.get(name)
        base = object_diff(name, _without(o, nested_key), _without(n, nested_key)) or {
            "Type": "None", "Name": name, "Fields": None, "Objects": None}
        if nested_key:
            base[nested_key] = _named_diffs((o or {}).get(nested_key), (n or {}).get(nested_key), None)
            if base["Type"] == "None" and any(t["Type"] != "None" for t in base[nested_key]):
                base["Type"] = "Edited"
        base["Type"] = _kind(o, n) if o is None or n is None else base["Type"]
        out.append(base)
    return out


def _without(item: dict | None, key: str | None) -> dict | None:
    if item is None or key is None:
        return item
    return {k: v for k, v in item.items() if k != key}


def job_diff(old: Job | None, new: Job, desired_updates: dict[str, Any] | None = None) -> dict[str, Any]:
    o, n = spec_of(old), spec_of(new)
    top = object_diff("Job", {k: v for k, v in o.items() if k != "TaskGroups"},
                      {k: v for k, v in n.items() if k != "TaskGroups"}) or {"Fields": None, "Objects": None}
    groups = _named_diffs(o.get("TaskGroups"), n.get("TaskGroups"), "Tasks")
    for group in groups:
        updates = (desired_updates or {}).get(group["Name"]) or {}
        group["Updates"] = {_UPDATE_NAMES.get(k, k): v for k, v in _snake(updates).items() if v} or None
    changed = old is None or top.get("Fields") or top.get("Objects") or any(g["Type"] != "None" for g in groups)
    return {
        "Type": "Added" if old is None else ("Edited" if changed else "None"),
        "ID": new.id,
        "Fields": top.get("Fields"),
        "Objects": top.get("Objects"),
        "TaskGroups": groups or None,
    }


def _snake(updates: dict[str, Any]) -> dict[str, Any]:
    """DesiredUpdates in wire form (`Place`, `InPlaceUpdate`) to the snake names above."""
    out = {}
    for key, value in updates.items():
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")
        out[snake] = value
    return out
