"""Helpers for the golden corpus: which schema keys a file uses, and HCL -> HCL-JSON."""

from __future__ import annotations

import json
from typing import Any

from yurt.jobspec.hcl_eval import EvalError, Evaluator, UnknownValue
from yurt.jobspec.hcl_syntax import Block, Body
from yurt.jobspec.schema import JOB, Schema


def schema_edges(schema: Schema = JOB) -> tuple[set, set]:
    """Every (schema, attribute) and (parent schema, block) pair reachable from `job`."""
    attrs, blocks, seen = set(), set(), set()

    def walk(s: Schema) -> None:
        if id(s) in seen or s.mode != "strict":
            return
        seen.add(id(s))
        attrs.update((id(s), s.name, name) for name in s.attrs if not _block_alias(s, name))
        for name, spec in s.blocks.items():
            blocks.add((id(s), s.name, name))
            walk(spec.schema)

    walk(schema)
    return attrs, blocks


def _block_alias(schema: Schema, name: str) -> bool:
    """`meta = {...}` and `meta {...}` are one key: count either form."""
    return name in schema.blocks


def used_edges(body: Body, schema: Schema = JOB) -> tuple[set, set]:
    attrs, blocks = set(), set()

    def walk(b: Body, s: Schema) -> None:
        if s.mode != "strict":
            return
        for attr in b.attributes:
            key = (id(s), s.name, attr.name)
            (blocks if attr.name in s.blocks else attrs).add(key)
        for block in b.blocks:
            inner = block.body
            kind = block.type
            if kind == "dynamic":
                kind = block.labels[0]
                inner = next(x.body for x in block.body.blocks if x.type == "content")
            if kind in s.blocks:
                blocks.add((id(s), s.name, kind))
                walk(inner, s.blocks[kind].schema)

    job_blocks = [b for b in body.blocks if b.type == "job"]
    for job in job_blocks:
        walk(job.body, schema)
    return attrs, blocks


# -- HCL -> HCL-style JSON (for the "HCL and JSON give the same job" check) ---------------
def hcl_to_json(body: Body, text: str) -> dict[str, Any]:
    literal = Evaluator(text, {}, None, {})
    out: dict[str, Any] = {}
    for attr in body.attributes:
        source = literal.source(attr.expr).strip()
        if attr.name == "type" and ("(" in source or source in ("string", "number", "bool", "any")):
            out[attr.name] = source  # a variable's type expression, written bare in HCL JSON
            continue
        out[attr.name] = _json_value(attr.expr, literal)
    for block in body.blocks:
        _add_block(out, block, text, literal)
    return out


def _json_value(expr, literal: Evaluator) -> Any:
    source = literal.source(expr).strip()
    if "try(" in source or "can(" in source:  # these succeed on errors: never literal
        return "${" + source + "}"
    try:
        value = literal.evaluate(expr)
    except (EvalError, UnknownValue, KeyError, AttributeError):
        value = None
    if value is not None and _is_plain(value):
        return value
    source = literal.source(expr).strip()
    return "${" + source + "}"


def _is_plain(value: Any) -> bool:
    if isinstance(value, str):
        return "${" not in value.replace("$${", "") and "%{" not in value
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_is_plain(v) for v in value.values())
    return True


def _add_block(out: dict, block: Block, text: str, literal: Evaluator) -> None:
    """Blocks become lists of (label-nested) objects: the one JSON form that means the
    same inside a schema'd block and inside free-form driver config."""
    value: Any = hcl_to_json(block.body, text)
    for label in reversed(block.labels):
        value = {label: value}
    out.setdefault(block.type, []).append(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
