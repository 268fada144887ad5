"""Decode an HCL body against a `Schema` into a dict with Nomad's JSON (API) names.

Strict: unknown arguments and blocks, repeated arguments, missing or extra labels and
values of the wrong type each add a diagnostic (with the nearest valid name), and
decoding goes on so that every problem in a file is reported at once.
"""

from __future__ import annotations

from typing import Any

from yurt.structs.durations import parse_duration
from yurt.structs.naming import nomad_name

from .diagnostics import DiagnosticCollector, Position, did_you_mean
from .hcl_dynamic import expand_dynamic_blocks
from .hcl_eval import EvalError, Evaluator, format_number
from .hcl_syntax import Attribute, Block, Body
from .schema import (
    ANY,
    BOOL,
    DURATION,
    INT,
    NUMBER,
    STRING,
    STRINGMAP,
    STRINGS,
    Blk,
    Schema,
)

_INVALID = object()

_KIND_WORDS = {STRING: "a string is required", INT: "a number is required",
               NUMBER: "a number is required", BOOL: "a bool is required",
               STRINGS: "list of string required", STRINGMAP: "map of string required",
               DURATION: "a duration string is required"}


class Decoder:
    """`strict=False` ignores unknown arguments and blocks instead of reporting them.

    `positions` records where each decoded block (by `id` of its dict) and each of its
    attribute values (by `(id, JSON name)`) was written, for the file-level checks.
    """

    def __init__(self, evaluator: Evaluator, collector: DiagnosticCollector, strict: bool = True):
        self.evaluator = evaluator
        self.diags = collector
        self.strict = strict
        self.positions: dict = {}
        self._keep: list = []  # decoded dicts stay alive so their ids stay unique

    # -- values -------------------------------------------------------------------------
    def value(self, attr: Attribute) -> Any:
        try:
            return self.evaluator.attribute_value(attr.expr)
        except EvalError as exc:
            if exc.summary:
                self.diags.add(exc.pos, exc.summary, exc.detail)
            return _INVALID

    def typed_value(self, attr: Attribute, kind: str) -> Any:
        value = self.value(attr)
        if value is _INVALID:
            return _INVALID
        try:
            return convert_value(value, kind)
        except _Inappropriate as exc:
            detail = f'Inappropriate value for attribute "{attr.name}": {exc}.'
            summary = "Invalid duration" if kind == DURATION else "Incorrect attribute value type"
            self.diags.add(attr.value_pos, summary, detail)
            return _INVALID

    # -- bodies -------------------------------------------------------------------------
    def body(self, body: Body, schema: Schema) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Position] = {}
        self._keep.append(out)
        for attr in body.attributes:
            self._attribute(attr, schema, out, seen)
        for block in expand_dynamic_blocks(body.blocks, self.evaluator, self.diags):
            self._block(block, schema, out, seen)
        if schema.post is not None:
            out = schema.post(out)
        return out

    def block_body(self, block: Block, schema: Schema) -> dict[str, Any]:
        """Decode a block's body (inside its `dynamic` iterator scope, if any)."""
        if block.scope is not None:
            self.evaluator.scopes.append(block.scope)
        try:
            decoded = self.body(block.body, schema)
        finally:
            if block.scope is not None:
                self.evaluator.scopes.pop()
        self.positions[id(decoded)] = block.pos
        return decoded

    def _attribute(self, attr: Attribute, schema: Schema, out: dict, seen: dict) -> None:
        if attr.name in seen:
            self.diags.add(attr.pos, "Attribute redefined",
                           f'The argument "{attr.name}" was already set at '
                           f"{seen[attr.name].describe(self.diags.filename)}. "
                           "Each argument may be set only once.")
            return
        seen[attr.name] = attr.pos
        if schema.mode != "strict":
            key = nomad_name(attr.name) if schema.mode == "opaque" else attr.name
            kind = STRING if schema.mode == "stringmap" else ANY
            value = self.typed_value(attr, kind)
            if value is not _INVALID:
                out[key] = value
                self.positions[(id(out), key)] = attr.value_pos
            return
        spec = schema.attrs.get(attr.name)
        if spec is None:
            self._unsupported_argument(attr, schema)
            return
        value = self.typed_value(attr, spec.kind)
        if value is not _INVALID:
            out[spec.json] = value
            self.positions[(id(out), spec.json)] = attr.value_pos

    def _unsupported_argument(self, attr: Attribute, schema: Schema) -> None:
        if not self.strict:
            return
        if attr.name in schema.blocks:
            hint = f' Did you mean to define a block of type "{attr.name}"?'
        else:
            hint = did_you_mean(attr.name, schema.attrs)
        self.diags.add(attr.pos, "Unsupported argument",
                       f'An argument named "{attr.name}" is not expected here.{hint}')

    def _block(self, block: Block, schema: Schema, out: dict, seen: dict) -> None:
        if schema.mode in ("freeform", "opaque"):
            self._nested_free_block(block, schema, out)
            return
        spec = schema.blocks.get(block.type)
        if spec is None:
            if not self.strict:
                return
            if schema.mode == "stringmap" or block.type in schema.attrs:
                detail = f'Blocks of type "{block.type}" are not expected here.'
                if block.type in schema.attrs:
                    detail += f' Did you mean to define argument "{block.type}"? If so, use the equals sign to assign it a value.'
            else:
                detail = (f'Blocks of type "{block.type}" are not expected here.'
                          + did_you_mean(block.type, schema.blocks))
            self.diags.add(block.pos, "Unsupported block type", detail)
            return
        if not self._labels_ok(block, spec):
            return
        if not spec.repeat and block.type in seen:
            self.diags.add(block.pos, f"Duplicate {block.type} block",
                           f"Only one {block.type} block is allowed. Another was defined at "
                           f"{seen[block.type].describe(self.diags.filename)}.")
            return
        seen.setdefault(block.type, block.pos)
        decoded = self.block_body(block, spec.schema)
        self._store_block(block, spec, decoded, out)

    def _labels_ok(self, block: Block, spec: Blk) -> bool:
        wanted = 1 if spec.label else 0
        if len(block.labels) < wanted:
            self.diags.add(block.pos, f"Missing name for {block.type}",
                           f"All {block.type} blocks must have 1 labels (name).")
            return False
        if len(block.labels) > wanted:
            pos = block.label_positions[wanted]
            detail = (f"No labels are expected for {block.type} blocks." if wanted == 0
                      else f"Only 1 labels (name) are expected for {block.type} blocks.")
            self.diags.add(pos, f"Extraneous label for {block.type}", detail)
            return False
        return True

    @staticmethod
    def _store_block(block: Block, spec: Blk, decoded: dict, out: dict) -> None:
        if spec.label:
            decoded[spec.label] = block.labels[0]
        if spec.keyed:
            out.setdefault(spec.json, {})[block.labels[0]] = decoded
        elif spec.repeat:
            out.setdefault(spec.json, []).append(decoded)
        else:
            out[spec.json] = decoded

    def _nested_free_block(self, block: Block, schema: Schema, out: dict) -> None:
        """Blocks inside driver config (kept as lists of maps) or opaque blocks."""
        decoded = self.block_body(block, schema)
        for label in reversed(block.labels):
            decoded = {label: decoded}
        key = nomad_name(block.type) if schema.mode == "opaque" else block.type
        if schema.mode == "opaque" and key not in out:
            out[key] = decoded
        elif schema.mode == "opaque":
            existing = out[key]
            out[key] = (existing if isinstance(existing, list) else [existing]) + [decoded]
        else:
            out.setdefault(key, []).append(decoded)


class _Inappropriate(Exception):
    pass


def convert_value(value: Any, kind: str) -> Any:
    """Check and convert an evaluated value to an attribute's kind (HCL's conversions)."""
    if kind == ANY:
        return value
    if kind == STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return format_number(value)
        if isinstance(value, str):
            return value
    elif kind in (INT, NUMBER):
        number = _as_number(value)
        if number is not None:
            if kind == INT:
                if isinstance(number, float) and not number.is_integer():
                    raise _Inappropriate("a whole number is required")
                return int(number)
            return number
    elif kind == BOOL:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    elif kind == DURATION:
        return _duration(value)
    elif kind == STRINGS:
        if isinstance(value, list):
            return [convert_value(item, STRING) for item in value]
    elif kind == STRINGMAP:
        if isinstance(value, dict):
            return {str(k): convert_value(v, STRING) for k, v in value.items()}
    raise _Inappropriate(_KIND_WORDS[kind])


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                pass
    return None


def _duration(value: Any) -> int:
    if isinstance(value, bool):
        raise _Inappropriate(_KIND_WORDS[DURATION])
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _Inappropriate(str(exc)) from None
    raise _Inappropriate(_KIND_WORDS[DURATION])
