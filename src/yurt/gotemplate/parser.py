"""Go text/template parser: tokens to trees, one tree per `define`/`block` name.

Follows `text/template/parse`: variables are checked at parse time (`undefined variable "$x"`),
function names too (`function "x" not defined`), `break`/`continue` only inside `range`.
"""

import re
from dataclasses import dataclass, field
from typing import Callable

from . import nodes as n
from .lexer import LexError, Token, lex

_OPERAND_KINDS = {"bool", "char", ".", "field", "ident", "number", "nil", "raw", "string", "var", "("}


class ParseError(Exception):
    def __init__(self, name: str, line: int, message: str):
        super().__init__(f"template: {name}:{line}: {message}")
        self.name = name
        self.line = line
        self.message = message


@dataclass
class Tree:
    name: str
    parse_name: str
    text: str
    root: n.ListNode = field(default_factory=lambda: n.ListNode(0))

    def location(self, node: n.Node) -> str:
        """Go's ErrorContext location: `parse_name:line:col` (col counted from 0 on the line)."""
        before = self.text[: node.pos]
        line = before.count("\n") + 1
        col = node.pos - (before.rfind("\n") + 1)
        return f"{self.parse_name}:{line}:{col}"


def token_text(tok: Token) -> str:
    if tok.kind == "eof":
        return "EOF"
    if tok.kind == "keyword":
        return f"<{tok.value}>"
    if len(tok.value) > 10:
        return n.quote(tok.value[:10]) + "..."
    return n.quote(tok.value)


def is_empty_tree(node: n.Node | None) -> bool:
    if node is None:
        return True
    if isinstance(node, n.ListNode):
        return all(is_empty_tree(x) for x in node.nodes)
    if isinstance(node, n.TextNode):
        return not node.text.strip()
    return False


class Parser:
    def __init__(self, tree: Tree, tokens: list[Token], has_func: Callable[[str], bool], trees: dict[str, Tree]):
        self.tree = tree
        self.tokens = tokens
        self.index = 0
        self.has_func = has_func
        self.trees = trees
        self.vars = ["$"]
        self.range_depth = 0
        self.last = tokens[0]

    # --- token stream -----------------------------------------------------------------

    def next(self) -> Token:
        tok = self.tokens[self.index]
        if tok.kind != "eof":
            self.index += 1
        self.last = tok
        return tok

    def backup(self, count: int = 1) -> None:
        self.index -= count

    def peek(self) -> Token:
        return self.tokens[self.index]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        while self.tokens[self.index].kind == "space":
            self.index += 1
        return self.tokens[self.index]

    def error(self, message: str) -> ParseError:
        return ParseError(self.tree.parse_name, self.last.line, message)

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: Token, context: str) -> ParseError:
        if tok.kind == "eof":
            return self.error(f"unexpected EOF in {context}")
        return self.error(f"unexpected {token_text(tok)} in {context}")

    # --- structure ----------------------------------------------------------------------

    def parse(self) -> None:
        root = self.tree.root
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                start = self.index
                self.next()
                if self.next_non_space().kind == "keyword" and self.last.value == "define":
                    self.parse_definition()
                    continue
                self.index = start
            node = self.text_or_action()
            if isinstance(node, (n.EndNode, n.ElseNode)):
                raise self.error(f"unexpected {node}")
            root.nodes.append(node)

    def parse_definition(self) -> None:
        name_tok = self.next_non_space()
        name = self.template_name(name_tok, "define clause")
        self.expect("right", "define clause")
        sub = Tree(name, self.tree.parse_name, self.tree.text)
        parser = Parser(sub, self.tokens, self.has_func, self.trees)
        parser.index = self.index
        sub.root, end = parser.item_list()
        if not isinstance(end, n.EndNode):
            raise parser.error(f"unexpected {end} in define clause")
        self.index = parser.index
        add_tree(self.trees, sub, parser)

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        items = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, (n.EndNode, n.ElseNode)):
                return items, node
            items.nodes.append(node)
        self.next()
        raise self.error("unexpected EOF")

    def text_or_action(self) -> n.Node:
        tok = self.next_non_space()
        if tok.kind == "text":
            return n.TextNode(tok.pos, tok.value)
        if tok.kind == "left":
            return self.action()
        raise self.unexpected(tok, "input")

    def action(self) -> n.Node:
        tok = self.next_non_space()
        if tok.kind == "keyword":
            handler = {
                "block": self.block_control, "break": self.break_control, "continue": self.continue_control,
                "else": self.else_control, "end": self.end_control, "if": self.if_control,
                "range": self.range_control, "template": self.template_control, "with": self.with_control,
            }.get(tok.value)
            if handler:
                return handler(tok)
        self.backup()
        tok = self.peek()
        return n.ActionNode(tok.pos, tok.line, self.pipeline("command", "right"))

    def break_control(self, tok: Token) -> n.Node:
        if self.next_non_space().kind != "right":
            raise self.unexpected(self.last, "{{break}}")
        if self.range_depth == 0:
            raise self.error("{{break}} outside {{range}}")
        return n.BreakNode(tok.pos, tok.line)

    def continue_control(self, tok: Token) -> n.Node:
        if self.next_non_space().kind != "right":
            raise self.unexpected(self.last, "{{continue}}")
        if self.range_depth == 0:
            raise self.error("{{continue}} outside {{range}}")
        return n.ContinueNode(tok.pos, tok.line)

    def end_control(self, tok: Token) -> n.Node:
        self.expect("right", "end")
        return n.EndNode(tok.pos)

    def else_control(self, tok: Token) -> n.Node:
        peek = self.peek_non_space()
        if peek.kind == "keyword" and peek.value in ("if", "with"):
            return n.ElseNode(tok.pos, tok.line, peek.value)
        self.expect("right", "else")
        return n.ElseNode(tok.pos, tok.line)

    def parse_control(self, context: str, cls: type, tok: Token) -> n.Node:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, "right")
            if context == "range":
                self.range_depth += 1
            body, end = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body = None
            if isinstance(end, n.ElseNode):
                if end.chained and end.chained == context:
                    self.next_non_space()  # the `if` / `with` after `else`
                    inner_tok = self.last
                    nested = self.parse_control(context, cls, inner_tok)
                    else_body = n.ListNode(nested.pos, [nested])
                else:
                    if end.chained:
                        raise self.error(f"unexpected {{{{else {end.chained}}}}} in {context}")
                    else_body, end = self.item_list()
                    if not isinstance(end, n.EndNode):
                        raise self.error(f"expected end; found {end}")
            return cls(pipe.pos, pipe.line, pipe, body, else_body, context)  # Go places control nodes at their pipeline
        finally:
            del self.vars[mark:]

    def if_control(self, tok: Token) -> n.Node:
        return self.parse_control("if", n.IfNode, tok)

    def with_control(self, tok: Token) -> n.Node:
        return self.parse_control("with", n.WithNode, tok)

    def range_control(self, tok: Token) -> n.Node:
        return self.parse_control("range", n.RangeNode, tok)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.kind not in ("string", "raw"):
            raise self.unexpected(tok, context)
        return unquote(tok.value) if tok.kind == "string" else tok.value[1:-1]

    def template_control(self, _keyword: Token) -> n.Node:
        tok = self.next_non_space()  # Go places the node at the template's name
        name = self.template_name(tok, "template clause")
        pipe = None
        if self.next_non_space().kind != "right":
            self.backup()
            pipe = self.pipeline("template clause", "right")
        return n.TemplateNode(tok.pos, tok.line, name, pipe)

    def block_control(self, _keyword: Token) -> n.Node:
        tok = self.next_non_space()
        name = self.template_name(tok, "block clause")
        pipe = self.pipeline("block clause", "right")
        sub = Tree(name, self.tree.parse_name, self.tree.text)
        parser = Parser(sub, self.tokens, self.has_func, self.trees)
        parser.index = self.index
        sub.root, end = parser.item_list()
        if not isinstance(end, n.EndNode):
            raise parser.error(f"unexpected {end} in block clause")
        self.index = parser.index
        add_tree(self.trees, sub, parser)
        return n.TemplateNode(tok.pos, tok.line, name, pipe)

    # --- pipelines ----------------------------------------------------------------------

    def pipeline(self, context: str, end: str) -> n.PipeNode:
        first = self.peek_non_space()
        pipe = n.PipeNode(first.pos, first.line)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_KINDS:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            start = self.index
            tok = self.peek_non_space()
            if tok.kind != "var":
                return
            self.next()
            after = self.peek_non_space()
            if after.kind in (":=", "="):
                self.next()
                pipe.is_assign = after.kind == "="
                pipe.decl.append(self.declare(tok, pipe.is_assign))
                return
            if after.kind == "," and context == "range" and len(pipe.decl) < 1:
                self.next()
                pipe.decl.append(self.declare(tok, False))
                if self.peek_non_space().kind != "var":
                    raise self.error("range can only initialize variables")
                continue
            if after.kind == ",":
                raise self.error(f"too many declarations in {context}")
            self.index = start
            return

    def declare(self, tok: Token, assign: bool) -> n.VariableNode:
        if assign:
            return self.use_var(tok)
        self.vars.append(tok.value)
        return n.VariableNode(tok.pos, [tok.value])

    def check_pipeline(self, pipe: n.PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (n.BoolNode, n.DotNode, n.NilNode, n.NumberNode, n.StringNode)):
                raise self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", ")"):
                self.backup()
            elif tok.kind != "|":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        fields = []
        pos = self.peek().pos
        while self.peek().kind == "field":
            fields.append(self.next().value[1:])
        if isinstance(node, n.FieldNode):
            return n.FieldNode(node.pos, node.idents + fields)
        if isinstance(node, n.VariableNode):
            return n.VariableNode(node.pos, node.idents + fields)
        if isinstance(node, (n.BoolNode, n.StringNode, n.NumberNode, n.NilNode, n.DotNode)):
            raise self.error(f"unexpected . after term {n.quote(str(node))}")
        return n.ChainNode(pos, node, fields)

    def term(self) -> n.Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "ident":
            if not self.has_func(tok.value):
                raise self.error(f"function {n.quote(tok.value)} not defined")
            return n.IdentifierNode(tok.pos, tok.value)
        if kind == ".":
            return n.DotNode(tok.pos)
        if kind == "keyword" and tok.value == "nil":
            return n.NilNode(tok.pos)
        if kind == "var":
            node = self.use_var(tok)
            return node
        if kind == "field":
            return n.FieldNode(tok.pos, [tok.value[1:]])
        if kind == "bool":
            return n.BoolNode(tok.pos, tok.value == "true")
        if kind in ("number", "char"):
            return n.NumberNode(tok.pos, tok.value, self.number(tok))
        if kind == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if kind == "string":
            return n.StringNode(tok.pos, tok.value, unquote(tok.value))
        if kind == "raw":
            return n.StringNode(tok.pos, tok.value, tok.value[1:-1])
        self.backup()
        return None

    def use_var(self, tok: Token) -> n.VariableNode:
        name, *fields = tok.value.split(".")
        if name not in self.vars:
            raise self.error(f"undefined variable {n.quote(name)}")
        return n.VariableNode(tok.pos, [name, *fields])

    def number(self, tok: Token):
        try:
            return parse_number(tok.value)
        except ValueError:
            raise self.error(f"illegal number syntax: {n.quote(tok.value)}") from None


def add_tree(trees: dict[str, Tree], tree: Tree, parser: Parser) -> None:
    existing = trees.get(tree.name)
    if existing is None or is_empty_tree(existing.root):
        trees[tree.name] = tree
    elif not is_empty_tree(tree.root):
        raise parser.error(f"template: multiple definition of template {n.quote(tree.name)}")


def parse_number(text: str):
    if text.startswith("'"):
        return ord(unquote(text))
    if text.endswith("i"):
        raise ValueError(text)
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    lower = body.lower()
    if lower.startswith("0x") and "p" not in lower and "." not in lower:
        return sign * int(body[2:], 16)
    if lower.startswith("0x"):
        return sign * float.fromhex(body)
    if lower.startswith("0b"):
        return sign * int(body[2:], 2)
    if lower.startswith("0o"):
        return sign * int(body[2:], 8)
    if any(c in body for c in ".eE"):
        return sign * float(body)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)
    return sign * int(body)


_ESCAPE = re.compile(r"""\\(?:([abfnrtv\\'"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))""")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}


def unquote(quoted: str) -> str:
    """Go's strconv.Unquote for "..." strings and '.' character constants."""
    body = quoted[1:-1]

    def one(m: re.Match) -> str:
        simple, hex2, u4, u8, octal = m.groups()
        if simple:
            return _SIMPLE[simple]
        return chr(int(hex2 or u4 or u8, 16) if not octal else int(octal, 8))

    return _ESCAPE.sub(one, body)


def parse_templates(text: str, name: str, has_func: Callable[[str], bool], left: str = "{{", right: str = "}}",
                    trees: dict[str, Tree] | None = None) -> dict[str, Tree]:
    """Parse `text` as template `name`; returns every tree by name (the main one included)."""
    trees = {} if trees is None else trees
    try:
        tokens = lex(text, left, right)
    except LexError as exc:
        raise ParseError(name, exc.line, str(exc)) from None
    tree = Tree(name, name, text)
    parser = Parser(tree, tokens, has_func, trees)
    parser.parse()
    add_tree(trees, tree, parser)
    return trees
