"""A job's JSON (API) dict -> HCL2 jobspec text (the inverse of the decoder).

Names are mapped back through the schema; ports go back into `port` blocks, labels
(group, task, volume, spread target, ...) back into block labels, durations become
strings such as "1m30s". The output is laid out by `hcl_format.format_hcl`, so it is
what `yurt fmt` would write. Parsing the output gives back the same job.
"""

from __future__ import annotations

import json
import re
from typing import Any

from yurt.structs.durations import format_duration, parse_duration

from .hcl_format import format_hcl
from .schema import DURATION, JOB, STRINGMAP, Attr, Blk, Schema

_DERIVED = ("SpecType",)  # set by the decoder from other fields
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_HIDDEN_ATTRS = ("_",)  # JSON names of shorthand attributes the decoder folds away


def render_job(job: dict[str, Any]) -> str:
    lines = [f"job {hcl_string(job.get('ID', ''))} {{"]
    body = {k: v for k, v in job.items() if k != "ID" and not (k == "Name" and v == job.get("ID"))}
    lines += _body(body, JOB)
    lines.append("}")
    return format_hcl("\n".join(lines))


_REVERSED: dict[int, tuple[dict, dict]] = {}


def _reverse(schema: Schema) -> tuple[dict[str, tuple[str, Attr]], dict[str, tuple[str, Blk]]]:
    if id(schema) in _REVERSED:
        return _REVERSED[id(schema)]
    attrs = {spec.json: (name, spec) for name, spec in schema.attrs.items()
             if not spec.json.startswith(_HIDDEN_ATTRS)}
    blocks = {spec.json: (name, spec) for name, spec in schema.blocks.items()
              if not spec.json.startswith("_") and name != "reserved_ports"}
    _REVERSED[id(schema)] = (attrs, blocks)
    return attrs, blocks


def _body(data: dict[str, Any], schema: Schema) -> list[str]:
    if schema.mode != "strict":
        return [f"{_key(k)} = {hcl_value(v)}" for k, v in data.items()]
    attrs, blocks = _reverse(schema)
    lines: list[str] = []
    nested: list[list[str]] = []  # one entry per block, separated by a blank line
    for key, value in data.items():
        if value is None or key in _DERIVED:
            continue
        if key in ("DynamicPorts", "ReservedPorts") and schema.name == "network":
            nested += _ports(value, key == "ReservedPorts")
        elif key in attrs and (key not in blocks or attrs[key][1].kind in (STRINGMAP, "any")):
            name, spec = attrs[key]
            lines.append(f"{name} = {_attribute_value(value, spec)}")
        elif key in blocks:
            name, spec = blocks[key]
            nested += _blocks(name, spec, value)
        else:
            raise ValueError(f'cannot render "{key}" in a {schema.name} block')
    for block in nested:
        lines += ([""] if lines else []) + block
    return lines


def _attribute_value(value: Any, spec: Attr) -> str:
    if spec.kind == DURATION and isinstance(value, int):
        text = format_duration(value)
        if parse_duration(text) == value:
            return hcl_string(text)
    return hcl_value(value)


def _blocks(name: str, spec: Blk, value: Any) -> list[list[str]]:
    if spec.keyed:
        items = [dict(v, **{spec.label: k}) for k, v in value.items()]
    else:
        items = value if spec.repeat else [value]
    blocks: list[list[str]] = []
    for item in items:
        item = dict(item)
        if spec.label == "_Label":  # task scaling: the label is the policy type (vertical_cpu -> "cpu")
            item["_Label"] = str(item.pop("Type", "")).replace("vertical_", "")
        label = f" {hcl_string(item.pop(spec.label, ''))}" if spec.label else ""
        blocks.append([f"{name}{label} {{", *_body(item, spec.schema), "}"])
    return blocks


def _ports(ports: list[dict], reserved: bool) -> list[list[str]]:
    blocks = []
    for port in ports:
        port = dict(port)
        label = port.pop("Label", "")
        if not reserved:
            port.pop("Value", None)
        lines = [f"port {hcl_string(label)} {{"]
        for key, name in (("Value", "static"), ("To", "to"), ("HostNetwork", "host_network"),
                          ("IgnoreCollision", "ignore_collision")):
            if key in port:
                lines.append(f"{name} = {hcl_value(port[key])}")
        blocks.append(lines + ["}"])
    return blocks


_KEYWORDS = ("if", "in", "for", "for_each", "else", "endif", "endfor", "true", "false", "null")


def _key(key: str) -> str:
    return key if _IDENTIFIER.match(key) and key not in _KEYWORDS else hcl_string(key)


def hcl_string(text: str) -> str:
    """A quoted HCL string whose value is exactly `text` (no interpolation)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    escaped = _DIRECTIVE.sub(_escape_directive, escaped)
    return '"' + _INTERPOLATION.sub(_escape_interpolation, escaped) + '"'


_INTERPOLATION = re.compile(r"\$\{([^}]*)\}?")
_DIRECTIVE = re.compile(r"%\{[^}]*\}?")
_RUNTIME_REFERENCE = re.compile(r"^(attr|node|meta|NOMAD_\w*|device|secret)(\.[\w.-]+)?$")


def _escape_directive(match: re.Match) -> str:
    if match.group(0).endswith("}"):
        return "%" + match.group(0)
    return "\\u0025{" + match.group(0)[2:]


def _escape_interpolation(match: re.Match) -> str:
    """Runtime references stay readable (`${attr.x}` parses back to itself); the rest is escaped."""
    if not match.group(0).endswith("}"):  # `$${` needs a closing brace to be an escape
        return "\\u0024{" + match.group(1)
    if _RUNTIME_REFERENCE.match(match.group(1)):
        return match.group(0)
    return "$" + match.group(0)


def hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(str(k))} = {hcl_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render a {type(value).__name__} as HCL")
