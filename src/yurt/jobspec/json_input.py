"""JSON job files and API bodies: `{"Job": {...}}` or a bare job in Nomad's API names."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from yurt.structs.job import Job

from .api_defaults import fill_partial_blocks
from .diagnostics import Diagnostic, JobspecError


def looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def json_job_dict(text: str, filename: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobspecError([Diagnostic(filename, exc.lineno, exc.colno,
                                       f"Invalid JSON; {exc.msg}.")]) from None
    if not isinstance(data, dict):
        raise JobspecError([Diagnostic(filename, 1, 1, "Invalid job; a JSON object is required.")])
    if set(data) == {"Job"} or (isinstance(data.get("Job"), dict) and "TaskGroups" not in data):
        data = data["Job"]
    if not isinstance(data, dict):
        raise JobspecError([Diagnostic(filename, 1, 1, 'Invalid job; "Job" must be an object.')])
    return data


def job_from_api_dict(data: dict[str, Any], filename: str = "<input>") -> Job:
    """A `Job` from its JSON (API) dict, with partially written blocks completed."""
    try:
        return msgspec.convert(fill_partial_blocks(data), Job)
    except msgspec.ValidationError as exc:
        raise JobspecError([Diagnostic(filename, 0, 0, f"Invalid job; {exc}")]) from None


def api_json_positions(data: Any, path: str = "Job") -> dict:
    """JSON paths of every object (by id) and key, in the form the file checks use."""
    from .diagnostics import Position

    positions: dict = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            positions[id(value)] = Position(path=where)
            for key, item in value.items():
                positions[(id(value), key)] = Position(path=f"{where}.{key}")
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(data, path)
    return positions
