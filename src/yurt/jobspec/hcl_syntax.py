"""HCL2 text -> a small syntax model (bodies, attributes, blocks) with positions.

python-hcl2 gives us a Lark parse tree with line/column on every node; we keep the
expression subtrees as they are and evaluate them later (`hcl_eval`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from functools import lru_cache

from hcl2 import parser as hcl2_parser
from hcl2.postlexer import PostLexer
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, JobspecError, Position


@dataclass
class Attribute:
    name: str
    expr: Tree
    pos: Position          # of the name
    value_pos: Position    # of the value


@dataclass
class Block:
    type: str
    labels: list[str]
    body: "Body"
    pos: Position          # of the block type
    label_positions: list[Position] = field(default_factory=list)
    scope: dict | None = None  # iterator values of a block made by a `dynamic` block


@dataclass
class Body:
    attributes: list[Attribute] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def position_of(node) -> Position:
    if isinstance(node, Token):
        return Position(node.line or 0, node.column or 0, node.end_column)
    first, last = first_token(node), last_token(node)
    if first is None:
        return Position()
    end = last.end_column if last is not None and last.end_line == first.line else None
    return Position(first.line, first.column, end)


def first_token(node) -> Token | None:
    """Positions come from tokens: the parser does not propagate them to trees (faster)."""
    while isinstance(node, Tree):
        if not node.children:
            return None
        node = next((c for c in node.children if not (isinstance(c, Tree) and not c.children)), None)
    return node


def last_token(node) -> Token | None:
    while isinstance(node, Tree):
        if not node.children:
            return None
        node = next((c for c in reversed(node.children) if not (isinstance(c, Tree) and not c.children)), None)
    return node


def source_span(node) -> tuple[int, int] | None:
    """The (start, end) offsets of a node's text in the parsed source."""
    first, last = first_token(node), last_token(node)
    if first is None or last is None:
        return None
    return first.start_pos, last.end_pos


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """python-hcl2's grammar, without `propagate_positions` (a third of the parse time)."""
    return Lark.open("hcl2.lark", rel_to=hcl2_parser.__file__, parser="lalr", cache=True,
                     propagate_positions=False, postlex=PostLexer())


def parse_tree(text: str) -> Tree:
    return _parser().parse(text + "\n")


def parse_hcl(text: str, filename: str) -> Body:
    """Parse HCL2 text; syntax errors raise `JobspecError` with line and column."""
    try:
        tree = parse_tree(_trim_heredoc_markers(text))
    except UnexpectedInput as exc:
        raise JobspecError([_syntax_diagnostic(exc, filename)]) from None
    return _body(tree.children[0])


_HEREDOC_OPEN = re.compile(r"<<-?([A-Za-z][A-Za-z0-9._-]*)[ \t]*\r?$")


def _trim_heredoc_markers(text: str) -> str:
    """HCL accepts spaces after a heredoc's closing marker; the Lark grammar does not."""
    if "<<" not in text:
        return text
    lines = text.split("\n")
    marker = None
    for i, line in enumerate(lines):
        if marker is None:
            match = _HEREDOC_OPEN.search(line)
            marker = match.group(1) if match else None
        elif line.strip() == marker:
            lines[i] = line.rstrip()
            marker = None
    return "\n".join(lines)


def _syntax_diagnostic(exc: UnexpectedInput, filename: str) -> Diagnostic:
    line, column = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            detail = "The file ended before the configuration was complete (a missing \"}\"?)."
        else:
            text = str(token).strip()
            shown = f'"{text.splitlines()[0][:20]}"' if text else "newline"
            detail = f"Unexpected {shown} here."
            if token.type in ("NL_OR_COMMENT", "RBRACE"):
                detail += " An argument or block definition is incomplete."
    elif isinstance(exc, UnexpectedCharacters):
        detail = f'This character is not used within the language: "{exc.char}".'
    elif isinstance(exc, UnexpectedEOF):
        detail = "The file ended before the configuration was complete."
    else:  # pragma: no cover - other Lark errors
        detail = str(exc).splitlines()[0]
    return Diagnostic(filename, line, column, f"Invalid syntax; {detail}")


def node_name(node) -> str:
    """The text of an identifier, keyword, literal or label string."""
    if isinstance(node, Token):
        return str(node)
    if node.data == "string":
        return "".join(
            str(part.children[0]) for part in node.children
            if isinstance(part, Tree) and part.data == "string_part"
            and isinstance(part.children[0], Token)
        )
    return "".join(str(t) for t in node.scan_values(lambda v: isinstance(v, Token)))


def _body(body_tree: Tree) -> Body:
    body = Body()
    for child in body_tree.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            name_node, expr = child.children[0], child.children[-1]
            body.attributes.append(
                Attribute(node_name(name_node), expr, position_of(name_node), position_of(expr))
            )
        elif child.data == "block":
            body.blocks.append(_block(child))
    return body


def _block(tree: Tree) -> Block:
    parts = [c for c in tree.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
    type_node, *label_nodes, body_tree = parts
    return Block(
        type=node_name(type_node),
        labels=[node_name(n) for n in label_nodes],
        body=_body(body_tree),
        pos=position_of(type_node),
        label_positions=[position_of(n) for n in label_nodes],
    )
