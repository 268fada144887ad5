"""HCL string templates: `${ expr }` interpolations and `%{ if }` / `%{ for }` directives.

Quoted strings arrive from the Lark tree as flat parts; heredocs and HCL-JSON strings
arrive as raw text and are scanned here. Both become a list of `Piece`s, which are
nested (if/else/endif, for/endfor), stripped around `~` markers and rendered.
A runtime reference (`${attr.x}`, `${NOMAD_ALLOC_ID}`) in an interpolation passes
through as its source text; in a directive it is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from lark import Tree
from lark.exceptions import UnexpectedInput

from .diagnostics import Position
from .hcl_syntax import parse_tree


@dataclass
class Piece:
    kind: str                      # text interp if else endif for endfor
    text: str = ""                 # literal text, or the source of an interpolation
    evaluate: Callable[[], Any] | None = None
    names: tuple[str, ...] = ()    # for-directive variables
    strip_before: bool = False
    strip_after: bool = False
    pos: Position = field(default_factory=Position)


@dataclass
class _Node:
    piece: Piece
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


class TemplateError(Exception):
    def __init__(self, pos: Position, summary: str, detail: str):
        super().__init__(f"{summary}; {detail}")
        self.pos, self.summary, self.detail = pos, summary, detail


def render_pieces(pieces: list[Piece], scopes: list[dict], unknown: type[Exception],
                  to_text: Callable[[Any, Position], str]) -> str:
    _apply_strip_markers(pieces)
    nodes, index = _nest(pieces, 0, ())
    if index < len(pieces):
        stray = pieces[index]
        raise TemplateError(stray.pos, "Unexpected template directive",
                            f'A "{stray.kind}" directive has no matching opening directive.')
    out: list[str] = []
    _render(nodes, out, scopes, unknown, to_text)
    return "".join(out)


def _apply_strip_markers(pieces: list[Piece]) -> None:
    for i, piece in enumerate(pieces):
        if piece.kind == "text":
            continue
        if piece.strip_before and i > 0 and pieces[i - 1].kind == "text":
            pieces[i - 1].text = pieces[i - 1].text.rstrip()
        if piece.strip_after and i + 1 < len(pieces) and pieces[i + 1].kind == "text":
            pieces[i + 1].text = pieces[i + 1].text.lstrip()


_CLOSERS = {"if": ("else", "endif"), "for": ("endfor",)}


def _nest(pieces: list[Piece], index: int, stops: tuple[str, ...]) -> tuple[list, int]:
    nodes: list = []
    while index < len(pieces):
        piece = pieces[index]
        if piece.kind in stops:
            return nodes, index
        if piece.kind in ("else", "endif", "endfor"):
            return nodes, index
        node = _Node(piece)
        index += 1
        if piece.kind in _CLOSERS:
            node.body, index = _nest(pieces, index, _CLOSERS[piece.kind])
            if piece.kind == "if" and index < len(pieces) and pieces[index].kind == "else":
                node.orelse, index = _nest(pieces, index + 1, ("endif",))
            wanted = "endif" if piece.kind == "if" else "endfor"
            if index >= len(pieces) or pieces[index].kind != wanted:
                raise TemplateError(piece.pos, "Unterminated template directive",
                                    f'There is no "{wanted}" for this "{piece.kind}" directive.')
            index += 1
        nodes.append(node)
    return nodes, index


def _render(nodes: list, out: list[str], scopes: list[dict], unknown: type[Exception],
            to_text: Callable[[Any, Position], str]) -> None:
    for node in nodes:
        piece = node.piece
        if piece.kind == "text":
            out.append(piece.text)
        elif piece.kind == "interp":
            try:
                out.append(to_text(piece.evaluate(), piece.pos))
            except unknown:
                out.append(piece.text)
        elif piece.kind == "if":
            condition = _directive_value(piece, unknown)
            if not isinstance(condition, bool):
                raise TemplateError(piece.pos, "Invalid template if condition",
                                    "The condition of an if directive must be of type bool.")
            _render(node.body if condition else node.orelse, out, scopes, unknown, to_text)
        else:
            _render_for(node, out, scopes, unknown, to_text)


def _render_for(node: _Node, out: list[str], scopes: list[dict], unknown: type[Exception],
                to_text: Callable[[Any, Position], str]) -> None:
    piece = node.piece
    collection = _directive_value(piece, unknown)
    if isinstance(collection, dict):
        items = list(collection.items())
    elif isinstance(collection, list):
        items = list(enumerate(collection))
    else:
        raise TemplateError(piece.pos, "Invalid template for collection",
                            "The for directive needs a list, set or map.")
    for key, value in items:
        names = piece.names
        scopes.append({names[0]: value} if len(names) == 1 else {names[0]: key, names[1]: value})
        try:
            _render(node.body, out, scopes, unknown, to_text)
        finally:
            scopes.pop()


def _directive_value(piece: Piece, unknown: type[Exception]) -> Any:
    try:
        return piece.evaluate()
    except unknown:
        raise TemplateError(piece.pos, "Invalid template directive",
                            f'"{piece.text}" refers to a value known only at run time; '
                            "template directives need values known when the job is parsed.") from None


# -- raw text (heredocs, HCL-JSON strings) -----------------------------------------------
_DIRECTIVE = re.compile(
    r"^(?:(?P<if>if)\s+(?P<cond>.+)|(?P<else>else)|(?P<endif>endif)|(?P<endfor>endfor)"
    r"|(?P<for>for)\s+(?P<k>[A-Za-z_][\w-]*)(?:\s*,\s*(?P<v>[A-Za-z_][\w-]*))?\s+in\s+(?P<coll>.+))$",
    re.S,
)


def scan_template(text: str, pos: Position, expression: Callable[[str, Position], Callable[[], Any]],
                  first_line_offset: int = 0) -> list[Piece]:
    """Split raw template text into pieces; `expression(source, pos)` makes an evaluator."""
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i) or text.startswith("%%{", i):
            literal.append(text[i + 1:i + 3])
            i += 3
            continue
        if text.startswith("${", i) or text.startswith("%{", i):
            end = matching_brace(text, i + 2)
            if end is not None:
                line = pos.line + first_line_offset + text.count("\n", 0, i)
                here = Position(line, pos.column if line == pos.line else 1)
                if literal:
                    pieces.append(Piece("text", "".join(literal)))
                    literal = []
                pieces.append(_sequence_piece(text[i:end + 1], here, expression))
                i = end + 1
                continue
        literal.append(text[i])
        i += 1
    if literal:
        pieces.append(Piece("text", "".join(literal)))
    return pieces


def _sequence_piece(source: str, pos: Position,
                    expression: Callable[[str, Position], Callable[[], Any]]) -> Piece:
    inner = source[2:-1]
    strip_before, strip_after = inner.startswith("~"), inner.endswith("~")
    inner = inner[1 if strip_before else 0:len(inner) - (1 if strip_after else 0)].strip()
    if source.startswith("$"):
        return Piece("interp", source, expression(inner, pos), (), strip_before, strip_after, pos)
    match = _DIRECTIVE.match(inner)
    if match is None:
        raise TemplateError(pos, "Invalid template directive",
                            f'"{source}" is not an if, else, endif, for or endfor directive.')
    kind = next(k for k in ("if", "else", "endif", "for", "endfor") if match.group(k))
    evaluate, names = None, ()
    if kind == "if":
        evaluate = expression(match.group("cond"), pos)
    elif kind == "for":
        names = tuple(n for n in (match.group("k"), match.group("v")) if n)
        evaluate = expression(match.group("coll"), pos)
    return Piece(kind, source, evaluate, names, strip_before, strip_after, pos)


def matching_brace(text: str, start: int) -> int | None:
    depth, i, quote = 1, start, False
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


@lru_cache(maxsize=4096)
def parse_expression(source: str) -> Tree | None:
    """The Lark tree of one HCL expression, or None when it is not HCL (e.g. shell syntax)."""
    try:
        tree = parse_tree(f"x = {source}\n")
    except UnexpectedInput:
        return None
    return tree.children[0].children[0].children[-1]
