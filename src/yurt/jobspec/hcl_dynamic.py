"""`dynamic "name" { for_each, iterator, labels, content {} }` blocks.

Each element of `for_each` produces one `name` block whose body is `content`, decoded
with the iterator (`<iterator>.key`, `<iterator>.value`) in scope. A dynamic block
inside `content` is expanded when that content is decoded, so nesting works.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from .diagnostics import DiagnosticCollector, did_you_mean
from .hcl_eval import EvalError, Evaluator, UnknownValue, to_template_string
from .hcl_syntax import Block, node_name

_DYNAMIC_ARGS = ("for_each", "iterator", "labels")


def expand_dynamic_blocks(blocks: Iterable[Block], evaluator: Evaluator,
                          diags: DiagnosticCollector) -> Iterator[Block]:
    for block in blocks:
        if block.type == "dynamic":
            yield from _expand(block, evaluator, diags)
        else:
            yield block


def _expand(block: Block, evaluator: Evaluator, diags: DiagnosticCollector) -> Iterator[Block]:
    if len(block.labels) != 1:
        diags.add(block.pos, "Missing name for dynamic" if not block.labels else "Extraneous label for dynamic",
                  "A dynamic block must have 1 label: the type of block to generate.")
        return
    attrs = {a.name: a for a in block.body.attributes}
    for attr in block.body.attributes:
        if attr.name not in _DYNAMIC_ARGS:
            diags.add(attr.pos, "Unsupported argument",
                      f'An argument named "{attr.name}" is not expected here.'
                      + did_you_mean(attr.name, _DYNAMIC_ARGS))
    contents = [b for b in block.body.blocks if b.type == "content"]
    for other in block.body.blocks:
        if other.type != "content":
            diags.add(other.pos, "Unsupported block type",
                      f'Blocks of type "{other.type}" are not expected here. Did you mean "content"?')
    if "for_each" not in attrs or len(contents) != 1:
        missing = 'argument "for_each"' if "for_each" not in attrs else 'exactly one "content" block'
        diags.add(block.pos, "Invalid dynamic block", f"A dynamic block requires {missing}.")
        return
    iterator = block.labels[0]
    if "iterator" in attrs:
        iterator = node_name(attrs["iterator"].expr).strip() or iterator
    collection = _for_each_value(attrs["for_each"], evaluator, diags)
    if collection is None:
        return
    items = collection.items() if isinstance(collection, dict) else enumerate(collection)
    for key, value in items:
        scope = {iterator: {"key": key, "value": value}}
        labels = _labels(attrs.get("labels"), scope, evaluator, diags)
        if labels is None:
            return
        yield Block(block.labels[0], labels, contents[0].body, contents[0].pos,
                    [attrs["labels"].value_pos if "labels" in attrs else block.pos] * len(labels),
                    _merged_scope(evaluator, scope))


def _merged_scope(evaluator: Evaluator, scope: dict) -> dict:
    """The iterator plus the scopes around it (an outer dynamic block's iterator)."""
    merged: dict = {}
    for outer in evaluator.scopes:
        merged.update(outer)
    merged.update(scope)
    return merged


def _for_each_value(attr, evaluator: Evaluator, diags: DiagnosticCollector) -> Any:
    try:
        value = evaluator.evaluate(attr.expr)
    except EvalError as exc:
        if exc.summary:
            diags.add(exc.pos, exc.summary, exc.detail)
        return None
    except UnknownValue:
        diags.add(attr.value_pos, "Invalid dynamic for_each value",
                  "Cannot use a value known only at run time in for_each.")
        return None
    if not isinstance(value, (list, dict)):
        diags.add(attr.value_pos, "Invalid dynamic for_each value",
                  "Cannot use a value of this type in for_each. An iterable collection is required.")
        return None
    return value


def _labels(attr, scope: dict, evaluator: Evaluator, diags: DiagnosticCollector) -> list[str] | None:
    if attr is None:
        return []
    evaluator.scopes.append(scope)
    try:
        value = evaluator.evaluate(attr.expr)
        if not isinstance(value, list):
            raise EvalError(attr.value_pos, "Invalid dynamic labels", "labels must be a list of strings.")
        return [to_template_string(v, attr.value_pos) for v in value]
    except EvalError as exc:
        if exc.summary:
            diags.add(exc.pos, exc.summary, exc.detail)
        return None
    except UnknownValue:
        diags.add(attr.value_pos, "Invalid dynamic labels",
                  "Cannot use a value known only at run time as a block label.")
        return None
    finally:
        evaluator.scopes.pop()
