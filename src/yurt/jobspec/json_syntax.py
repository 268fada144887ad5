"""HCL-style JSON job files (`{"job": {"web": {"group": {"cache": {...}}}}}`) -> the same
syntax model (`Body`) the HCL parser produces, so both go through one decoder.

Which keys are blocks (and how many labels they take) comes from the schema, as in
HCL's JSON syntax. Strings are templates (`"${var.count}"`); a string that is only one
interpolation yields the value itself. Positions are JSON paths.
"""

from __future__ import annotations

import json
from typing import Any

from .diagnostics import Diagnostic, JobspecError, Position
from .hcl_syntax import Attribute, Block, Body
from .schema import JOB, Schema


class JsonExpr:
    """An attribute value from a JSON file; `Evaluator` evaluates it (`_eval_json_value`)."""

    data = "json_value"

    def __init__(self, value: Any, pos: Position):
        self.value, self.pos = value, pos

    @property
    def source_text(self) -> str:
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


def is_hcl_json(data: Any) -> bool:
    return isinstance(data, dict) and "job" in data and "Job" not in data and "ID" not in data


def hcl_json_body(text: str, filename: str) -> Body | None:
    """The body of an HCL-style JSON file; None when the JSON is an API job instead."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobspecError([Diagnostic(filename, exc.lineno, exc.colno, f"Invalid JSON; {exc.msg}.")]) from None
    if not is_hcl_json(data):
        return None
    return top_level_body(data, filename)


def top_level_body(data: dict, filename: str) -> Body:
    body = Body()
    for key, value in data.items():
        pos = Position(path=key)
        if key in ("job", "variable"):
            schema = JOB if key == "job" else _VARIABLE
            for block in _labelled_blocks(key, value, 1, schema, key, filename):
                body.blocks.append(block)
        elif key in ("variables", "locals"):
            for i, item in enumerate(value if isinstance(value, list) else [value]):
                path = f"{key}[{i}]" if isinstance(value, list) else key
                body.blocks.append(Block(key, [], _attributes_only(item, path, filename), Position(path=path)))
        else:
            body.attributes.append(Attribute(key, JsonExpr(value, pos), pos, pos))
    return body


_VARIABLE = Schema("variable", blocks={})  # attributes only, plus "validation" blocks


def _attributes_only(value: Any, path: str, filename: str) -> Body:
    _require_object(value, path, filename)
    body = Body()
    for key, item in value.items():
        pos = Position(path=f"{path}.{key}")
        body.attributes.append(Attribute(key, JsonExpr(item, pos), pos, pos))
    return body


def _require_object(value: Any, path: str, filename: str) -> None:
    if not isinstance(value, dict):
        raise JobspecError([Diagnostic(filename, 0, 0, "Invalid JSON block; a JSON object is required.", path=path)])


def _labelled_blocks(kind: str, value: Any, labels: int, schema: Schema, path: str,
                     filename: str) -> list[Block]:
    """`{"a": {...}, "b": {...}}` (or a list of such) -> blocks labelled a, b."""
    items = value if isinstance(value, list) else [value]
    blocks = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]" if isinstance(value, list) else path
        if labels == 0:
            blocks.append(Block(kind, [], _body(item, schema, item_path, filename), Position(path=item_path)))
            continue
        _require_object(item, item_path, filename)
        for label, inner in item.items():
            for j, one in enumerate(inner if isinstance(inner, list) else [inner]):
                inner_path = f"{item_path}.{label}" + (f"[{j}]" if isinstance(inner, list) else "")
                block_pos = Position(path=inner_path)
                blocks.append(Block(kind, [label], _body(one, schema, inner_path, filename),
                                    block_pos, [block_pos]))
    return blocks


def _body(value: Any, schema: Schema, path: str, filename: str) -> Body:
    _require_object(value, path, filename)
    body = Body()
    for key, item in value.items():
        item_path = f"{path}.{key}"
        spec = schema.blocks.get(key) if schema.mode == "strict" else None
        if schema is _VARIABLE and key == "validation":
            for i, rule in enumerate(item if isinstance(item, list) else [item]):
                rule_path = f"{item_path}[{i}]" if isinstance(item, list) else item_path
                body.blocks.append(Block(key, [], _attributes_only(rule, rule_path, filename),
                                         Position(path=rule_path)))
        elif spec is not None and not (key in schema.attrs and not isinstance(item, list)):
            body.blocks.extend(_labelled_blocks(key, item, 1 if spec.label else 0, spec.schema,
                                                item_path, filename))
        else:
            pos = Position(path=item_path)
            body.attributes.append(Attribute(key, JsonExpr(item, pos), pos, pos))
    return body
