"""Input variables (`variable` blocks, `-var`, `-var-file`, `NOMAD_VAR_*`) and `locals`.

Precedence, lowest first: a variable's default, `NOMAD_VAR_<name>` environment
variables, var files, `-var k=v` values. Values given as strings are converted to the
variable's declared type (number, bool, list, map) as Nomad does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .diagnostics import DiagnosticCollector, Position, did_you_mean
from .hcl_eval import UNSET, EvalError, Evaluator, Namespace, UnknownValue, _PendingLocal, format_number
from .hcl_syntax import Block, Body, parse_hcl

ENV_PREFIX = "NOMAD_VAR_"


@dataclass
class Declaration:
    name: str
    type_text: str        # the `type` expression's source ("string", "list(string)", "" = any)
    default: Any
    has_default: bool
    pos: Position
    validations: list[Block] = field(default_factory=list)


def declarations(blocks: list[Block], evaluator: Evaluator, diags: DiagnosticCollector) -> dict[str, Declaration]:
    declared: dict[str, Declaration] = {}
    for block in blocks:
        if len(block.labels) != 1:
            diags.add(block.pos, "Missing name for variable", "All variable blocks must have 1 labels (name).")
            continue
        name = block.labels[0]
        if name in declared:
            diags.add(block.pos, "Duplicate variable declaration",
                      f'A variable named "{name}" was already declared at '
                      f"{declared[name].pos.describe(diags.filename)}. Variable names must be unique.")
            continue
        declared[name] = _declaration(name, block, evaluator, diags)
    return declared


_VARIABLE_ARGS = ("type", "default", "description", "sensitive", "nullable")


def _declaration(name: str, block: Block, evaluator: Evaluator, diags: DiagnosticCollector) -> Declaration:
    type_text, default, has_default = "", None, False
    for attr in block.body.attributes:
        if attr.name == "type":
            type_text = evaluator.source(attr.expr).strip()
            if type_text.startswith("${") and type_text.endswith("}"):  # JSON: "${list(string)}"
                type_text = type_text[2:-1].strip()
        elif attr.name == "default":
            try:
                default, has_default = evaluator.evaluate(attr.expr), True
            except (EvalError, UnknownValue):
                diags.add(attr.value_pos, "Invalid default value for variable",
                          "Variables may not be used here.")
        elif attr.name not in _VARIABLE_ARGS:
            diags.add(attr.pos, "Unsupported argument",
                      f'An argument named "{attr.name}" is not expected here.'
                      + did_you_mean(attr.name, _VARIABLE_ARGS))
    validations = []
    for sub in block.body.blocks:
        if sub.type == "validation":
            validations.append(sub)
        else:
            diags.add(sub.pos, "Unsupported block type",
                      f'Blocks of type "{sub.type}" are not expected here.')
    return Declaration(name, type_text, default, has_default, block.pos, validations)


def check_validations(declared: dict[str, Declaration], evaluator: Evaluator,
                      diags: DiagnosticCollector) -> None:
    """Evaluate each `validation { condition, error_message }` of the declared variables."""
    for decl in declared.values():
        if evaluator.var.values.get(decl.name) is UNSET:
            continue
        for block in decl.validations:
            attrs = {a.name: a for a in block.body.attributes}
            if "condition" not in attrs:
                diags.add(block.pos, "Missing required argument",
                          'The argument "condition" is required, but no definition was found.')
                continue
            try:
                ok = evaluator.evaluate(attrs["condition"].expr)
                message = evaluator.evaluate(attrs["error_message"].expr) if "error_message" in attrs else ""
            except (EvalError, UnknownValue) as exc:
                if getattr(exc, "summary", "x"):
                    diags.add(attrs["condition"].value_pos, "Invalid variable validation condition",
                              str(exc))
                continue
            if ok is not True:
                diags.add(attrs["condition"].value_pos, "Invalid value for variable",
                          f"{message}\nThis was checked by the validation rule at "
                          f"{block.pos.describe(diags.filename)}.".strip())


def convert_input(text: str, type_text: str) -> Any:
    """A string from the command line or environment, as the declared type."""
    kind = type_text.split("(")[0].strip()
    if kind in ("", "string", "any"):
        return text
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            return float(text)
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f'a bool is required, got "{text}"')
        return text == "true"
    return _parse_collection(text)


def _parse_collection(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    body = parse_hcl(f"value = {text}\n", "<value>")
    evaluator = Evaluator(f"value = {text}\n", {}, None, {})
    return evaluator.evaluate(body.attributes[0].expr)


def read_var_file(path: str, functions: dict[str, Callable[..., Any]],
                  diags: DiagnosticCollector) -> dict[str, tuple[Any, Position]]:
    """`name = value` pairs from an HCL (or JSON) var file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        diags.add(None, "Failed to read var file", f"{path}: {exc.strerror}")
        return {}
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            diags.add(None, "Invalid var file", f"{path}:{exc.lineno},{exc.colno}: {exc.msg}.")
            return {}
        if not isinstance(data, dict):
            diags.add(None, "Invalid var file", f"{path}: a JSON object of variable values is required.")
            return {}
        return {k: (v, Position(path=f"{os.path.basename(path)}: {k}")) for k, v in data.items()}
    body: Body = parse_hcl(text, path)
    evaluator = Evaluator(text, {}, None, functions)
    values = {}
    for attr in body.attributes:
        try:
            values[attr.name] = (evaluator.evaluate(attr.expr), attr.pos)
        except (EvalError, UnknownValue):
            diags.add(attr.value_pos, "Invalid value in var file",
                      "Variables and runtime references may not be used here.")
    return values


def resolve_variables(declared: dict[str, Declaration], cli_vars: dict[str, str],
                      file_values: dict[str, tuple[Any, Position]],
                      env: dict[str, str], diags: DiagnosticCollector,
                      strict: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {n: d.default for n, d in declared.items() if d.has_default}
    for key, text in env.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):] in declared:
            name = key[len(ENV_PREFIX):]
            values[name] = _converted(text, declared[name], diags, f"environment variable {key}")
    for name, (value, pos) in file_values.items():
        if name not in declared:
            if not strict:
                continue
            diags.add(pos, "Undefined variable",
                      f'A "{name}" variable was assigned a value, but was not found in known variables.'
                      + did_you_mean(name, declared))
            continue
        values[name] = value
    for name, text in cli_vars.items():
        if name not in declared:
            if not strict:
                continue
            diags.add(None, "Undefined -var variable",
                      f'A "{name}" variable was passed in but was not found in known variables. '
                      f'To declare variable "{name}", place this block in your jobspec: variable "{name}" {{}}')
            continue
        values[name] = _converted(text, declared[name], diags, f"-var {name}")
    for name, decl in declared.items():
        if name not in values:
            values[name] = UNSET
            diags.add(decl.pos, f'Unset variable "{name}"',
                      "A used variable must be set or have a default value; see "
                      "https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details.")
    return values


def _converted(text: str, decl: Declaration, diags: DiagnosticCollector, source: str) -> Any:
    try:
        return convert_input(text, decl.type_text)
    except Exception as exc:  # a malformed value
        diags.add(None, "Invalid value for variable", f'{source}: {exc}')
        return text


def evaluate_locals(blocks: list[Block], evaluator: Evaluator, diags: DiagnosticCollector) -> Namespace:
    """Evaluate every `locals` attribute, in dependency order; cycles are reported."""
    pending = {attr.name: attr for block in blocks for attr in block.body.attributes}
    namespace = Namespace("local", {}, set(pending))
    evaluator.local = namespace
    progress = True
    while pending and progress:
        progress = False
        for name, attr in list(pending.items()):
            try:
                namespace.values[name] = evaluator.attribute_value(attr.expr)
            except _PendingLocal:
                continue
            except EvalError as exc:
                if exc.summary:
                    diags.add(exc.pos, exc.summary, exc.detail)
                namespace.values[name] = UNSET
            del pending[name]
            namespace.pending.discard(name)
            progress = True
    for name, attr in pending.items():
        diags.add(attr.pos, "Cycle in local values", f'The local value "{name}" depends on itself.')
    namespace.pending.clear()
    return namespace


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def variables_from_text(text: str, filename: str = "<variables>") -> dict[str, str]:
    """HCL `name = value` lines (a var file's text, as in the `Variables` of Nomad's
    `/v1/jobs/parse` request) as `-var` strings; lists and maps become JSON."""
    diags = DiagnosticCollector(filename)
    evaluator = Evaluator(text, {}, None, {})
    out: dict[str, str] = {}
    for attr in parse_hcl(text, filename).attributes:
        try:
            value = evaluator.evaluate(attr.expr)
        except (EvalError, UnknownValue):
            diags.add(attr.value_pos, "Invalid value for variable",
                      "Variables, functions and runtime references may not be used here.")
            continue
        if isinstance(value, bool):
            out[attr.name] = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            out[attr.name] = json.dumps(value)
        else:
            out[attr.name] = format_number(value) if isinstance(value, (int, float)) else str(value)
    diags.raise_if_any()
    return out
