"""`?filter=`: the common subset of go-bexpr that Nomad's list routes accept.

    Status == "running" and not (JobID contains "batch")
    "web" in Tags        Meta.owner == "ops"        NodeID is empty
    Name matches "^web-[0-9]+$"        Datacenter in ["dc1", "dc2"]  (not bexpr; not supported)

Selectors walk the JSON form of each item (Nomad's field names; map keys with `.key` or
`["key"]`). Values are compared as the selected field's type.
"""

import re
from collections.abc import Callable
from typing import Any

from yurt.server.endpoints import EndpointError

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|\(|\)|\[|\]|\.)'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_\-/]*))"
)

Predicate = Callable[[Any], bool]


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise EndpointError(400, f"failed to read filter expression: unexpected {text[pos:]!r}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")
            out.append(("value", raw[1:-1].replace('\\"', '"') if raw[0] == '"' else raw[1:-1]))
        elif m.group("num") is not None:
            out.append(("value", m.group("num")))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> tuple[str, Any] | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise EndpointError(400, "failed to read filter expression: unexpected end of expression")
        self.i += 1
        return tok

    def is_word(self, word: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok[0] == "word" and tok[1] == word

    def parse(self) -> Predicate:
        pred = self.parse_or()
        if self.peek() is not None:
            raise EndpointError(400, f"failed to read filter expression: unexpected {self.peek()[1]!r}")
        return pred

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.is_word("or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while self.is_word("and"):
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def parse_unary(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            inner = self.parse_unary()
            return lambda item: not inner(item)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.parse_or()
            if self.take() != ("op", ")"):
                raise EndpointError(400, "failed to read filter expression: missing ')'")
            return inner
        return self.parse_match()

    def parse_selector(self) -> list[str]:
        kind, word = self.take()
        if kind != "word":
            raise EndpointError(400, f"failed to read filter expression: expected a selector, got {word!r}")
        path = [word]
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take() == ("op", "."):
                path.append(self.take()[1])
            else:
                path.append(self.take()[1])
                self.take()  # ]
        return path

    def parse_match(self) -> Predicate:
        if self.peek() and self.peek()[0] == "value":
            value = self.take()[1]
            negate = self.is_word("not")
            if negate:
                self.take()
            if not self.is_word("in"):
                raise EndpointError(400, "failed to read filter expression: expected 'in'")
            self.take()
            path = self.parse_selector()
            return lambda item: negate != _contains(_select(item, path), value)
        path = self.parse_selector()
        negate = False
        if self.is_word("is"):
            self.take()
            if self.is_word("not"):
                self.take()
                negate = True
            self.take()  # empty
            return lambda item: negate != _is_empty(_select(item, path))
        if self.is_word("not"):
            self.take()
            negate = True
        kind, op = self.take()
        value = self.take()[1]
        test = _OPERATORS.get(op)
        if test is None:
            raise EndpointError(400, f"failed to read filter expression: unknown operator {op!r}")
        return lambda item: negate != test(_select(item, path), value)


_MISSING = object()


def _select(item: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(item, dict) and key in item:
            item = item[key]
        else:
            return _MISSING
    return item


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None or value is _MISSING else str(value)


def _contains(container: Any, value: str) -> bool:
    if isinstance(container, (list, dict)):
        return any(_as_text(v) == value for v in container)
    return isinstance(container, str) and value in container


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {}


_OPERATORS: dict[str, Callable[[Any, str], bool]] = {
    "==": lambda field, value: _as_text(field) == value,
    "!=": lambda field, value: _as_text(field) != value,
    "contains": lambda field, value: _contains(field, value),
    "matches": lambda field, value: re.search(value, _as_text(field)) is not None,
    "in": lambda field, value: _contains(field, value),
}


def compile_filter(text: str) -> Predicate:
    """A predicate over JSON-shaped items; raises EndpointError(400) on a bad expression."""
    return _Parser(text).parse()
