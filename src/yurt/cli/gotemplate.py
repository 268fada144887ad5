"""A small renderer for Go `text/template`, enough for Nomad's `-t` flag.

Supported: `{{.Field.Sub}}`, `{{.}}`, variables (`$x := ...`, `$`, `$i, $e := range`),
pipelines (`.Name | printf "%q"`), parentheses, `if`/`else if`/`else`, `range` (lists,
maps in key order, integers) with `else`, `with`, `break`/`continue`, trim markers
(`{{-`, `-}}`), comments, and the functions `and or not len index slice eq ne lt le gt ge
print printf println json toJson` plus Nomad's `sprig_*` names for a few common helpers.
Data is JSON builtins (dicts with Nomad's field names); a missing field prints `<no value>`.
"""

import json
import re
from typing import Any, Callable

from .template_funcs import FUNCS, go_print, truth


class TemplateError(Exception):
    pass


# ---------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<char>'(?:[^'\\]|\\.)')
      | (?P<decl>:=)
      | (?P<assign>=)
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<punct>[()|,])
    )""",
    re.X,
)


def _split(source: str) -> list[tuple[str, str]]:
    """[("text", ...), ("action", ...)] with trim markers applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        parts.append(("text", text))
        parts.append(("action", match.group(2).strip()))
        pos = match.end()
        if match.group(3):
            rest = source[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\r\n"))
    parts.append(("text", source[pos:]))
    return [(kind, value) for kind, value in parts if kind == "action" or value]


def _tokens(action: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    action = action.rstrip()
    while pos < len(action):
        match = _TOKEN.match(action, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"unexpected {action[pos:].strip()[:10]!r} in command")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


# ---------------------------------------------------------------- parsing

class _Parser:
    def __init__(self, parts: list[tuple[str, str]]):
        self.parts = parts
        self.pos = 0

    def parse_list(self, stops: tuple[str, ...]) -> tuple[list, str]:
        nodes: list = []
        while self.pos < len(self.parts):
            kind, value = self.parts[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(("text", value))
                continue
            if value.startswith("/*"):
                continue
            word = value.split(None, 1)[0] if value else ""
            if word in stops or (word == "else" and "else" in stops):
                return nodes, value
            nodes.append(self.parse_action(word, value))
        if stops:
            raise TemplateError("unexpected EOF")
        return nodes, ""

    def parse_action(self, word: str, value: str) -> tuple:
        if word in ("if", "range", "with"):
            return self.parse_block(word, value[len(word):])
        if word in ("break", "continue"):
            return (word,)
        if word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{{word}}}}}")
        if word in ("define", "template", "block"):
            raise TemplateError(f"{word} is not supported")
        return ("action", _parse_pipeline(_tokens(value)))

    def parse_block(self, word: str, rest: str) -> tuple:
        pipe = _parse_pipeline(_tokens(rest))
        body, stop = self.parse_list(("end", "else"))
        else_body: list = []
        if stop.startswith("else"):
            tail = stop[4:].strip()
            if tail.startswith(("if", "with")):
                nested_word = tail.split(None, 1)[0]
                else_body = [self.parse_block(nested_word, tail[len(nested_word):])]
                return (word, pipe, body, else_body)
            else_body, stop = self.parse_list(("end",))
        return (word, pipe, body, else_body)


def _parse_pipeline(tokens: list[tuple[str, str]]) -> tuple:
    decl: list[str] = []
    assign = False
    names = [t for t in tokens[:4]]
    for split in (1, 3):
        if len(names) > split and names[split][0] in ("decl", "assign"):
            heads = tokens[:split]
            if all(k in ("var", "punct") for k, _ in heads):
                decl = [v for k, v in heads if k == "var"]
                assign = names[split][0] == "assign"
                tokens = tokens[split + 1 :]
            break
    cmds, pos = _parse_commands(tokens, 0)
    if pos != len(tokens):
        raise TemplateError(f"unexpected {tokens[pos][1]!r} in operand")
    if not cmds:
        raise TemplateError("missing value for command")
    return ("pipe", decl, assign, cmds)


def _parse_commands(tokens: list, pos: int) -> tuple[list, int]:
    cmds: list[list] = [[]]
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "punct" and value == ")":
            break
        if kind == "punct" and value == "|":
            if not cmds[-1]:
                raise TemplateError("missing command before |")
            cmds.append([])
            pos += 1
            continue
        operand, pos = _parse_operand(tokens, pos)
        cmds[-1].append(operand)
    return [c for c in cmds if c], pos


def _parse_operand(tokens: list, pos: int) -> tuple[tuple, int]:
    kind, value = tokens[pos]
    if kind == "punct" and value == "(":
        cmds, pos = _parse_commands(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos][1] != ")":
            raise TemplateError("unclosed left paren")
        pos += 1
        node: tuple = ("pipe", [], False, cmds)
        if pos < len(tokens) and tokens[pos][0] == "field" and tokens[pos][1] != ".":
            node = ("chain", node, tokens[pos][1].split(".")[1:])
            pos += 1
        return node, pos
    if kind in ("str", "raw", "char"):
        return ("lit", _literal(kind, value)), pos + 1
    if kind == "num":
        number: Any = float(value) if any(c in value for c in ".eE") else int(value)
        return ("lit", number), pos + 1
    if kind == "field":
        return ("field", [] if value == "." else value.split(".")[1:]), pos + 1
    if kind == "var":
        name, *path = value.split(".")
        return ("var", name, path), pos + 1
    if kind == "ident":
        if value in ("true", "false"):
            return ("lit", value == "true"), pos + 1
        if value == "nil":
            return ("lit", None), pos + 1
        return ("func", value), pos + 1
    raise TemplateError(f"unexpected {value!r} in operand")


def _literal(kind: str, value: str) -> Any:
    if kind == "raw":
        return value[1:-1]
    if kind == "char":
        return ord(json.loads('"' + value[1:-1].replace('"', '\\"') + '"'))
    return json.loads(value)


# ---------------------------------------------------------------- execution

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _field(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    if value is None:
        return None
    raise TemplateError(f"can't evaluate field {name} in type {_go_type(value)}")


def _go_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}"}.get(
        type(value), "interface {}"
    )


class _Exec:
    def __init__(self, funcs: dict[str, Callable]):
        self.funcs = funcs
        self.out: list[str] = []

    def run(self, nodes: list, dot: Any, scope: dict) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                self.out.append(node[1])
            elif kind == "action":
                value = self.pipeline(node[1], dot, scope)
                if not node[1][1]:
                    self.out.append(go_print(value))
            elif kind == "if":
                self.run(node[2] if truth(self.pipeline(node[1], dot, scope)) else node[3], dot, scope)
            elif kind == "with":
                value = self.pipeline(node[1], dot, scope)
                self.run(node[2], value, scope) if truth(value) else self.run(node[3], dot, scope)
            elif kind == "range":
                self.range(node, dot, scope)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def range(self, node: tuple, dot: Any, scope: dict) -> None:
        pipe = node[1]
        value = self.pipeline(("pipe", [], False, pipe[3]), dot, scope)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        if not items:
            self.run(node[3], dot, scope)
            return
        names = pipe[1]
        for key, elem in items:
            inner = dict(scope)
            if len(names) == 1:
                inner[names[0]] = elem
            elif len(names) == 2:
                inner[names[0]], inner[names[1]] = key, elem
            try:
                self.run(node[2], elem, inner)
            except _Break:
                break
            except _Continue:
                continue

    def pipeline(self, pipe: tuple, dot: Any, scope: dict) -> Any:
        _, decl, _assign, cmds = pipe
        value: Any = None
        has_value = False
        for cmd in cmds:
            value = self.command(cmd, dot, scope, value, has_value)
            has_value = True
        if decl:
            scope[decl[-1]] = value
        return value

    def command(self, cmd: list, dot: Any, scope: dict, piped: Any, has_piped: bool) -> Any:
        head = cmd[0]
        if head[0] == "func":
            args = [self.operand(op, dot, scope) for op in cmd[1:]]
            if has_piped:
                args.append(piped)
            return self.call(head[1], args)
        if len(cmd) > 1 or has_piped:
            raise TemplateError(f"can't give argument to non-function {self.describe(head)}")
        return self.operand(head, dot, scope)

    def call(self, name: str, args: list) -> Any:
        func = self.funcs.get(name)
        if func is None:
            raise TemplateError(f'function "{name}" not defined')
        try:
            return func(*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise TemplateError(f"error calling {name}: {exc}") from exc

    def operand(self, op: tuple, dot: Any, scope: dict) -> Any:
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            value = dot
            for name in op[1]:
                value = _field(value, name)
            return value
        if kind == "var":
            if op[1] not in scope:
                raise TemplateError(f"undefined variable: {op[1]}")
            value = scope[op[1]]
            for name in op[2]:
                value = _field(value, name)
            return value
        if kind == "pipe":
            return self.pipeline(op, dot, scope)
        if kind == "chain":
            value = self.pipeline(op[1], dot, scope)
            for name in op[2]:
                value = _field(value, name)
            return value
        if kind == "func":
            return self.call(op[1], [])
        raise TemplateError(f"bad operand {op!r}")

    @staticmethod
    def describe(op: tuple) -> str:
        if op[0] == "field":
            return "." + ".".join(op[1])
        return str(op[1])


def parse(source: str) -> list:
    nodes, _ = _Parser(_split(source)).parse_list(())
    return nodes


def render(source: str, data: Any, funcs: dict[str, Callable] | None = None) -> str:
    """Render Go template `source` against `data` (JSON builtins)."""
    tree = parse(source)
    runner = _Exec({**FUNCS, **(funcs or {})})
    try:
        runner.run(tree, data, {"$": data})
    except (_Break, _Continue):
        raise TemplateError("break or continue outside range") from None
    return "".join(runner.out)
