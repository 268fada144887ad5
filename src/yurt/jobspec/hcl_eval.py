"""Evaluate HCL2 expressions from the Lark tree.

References to `var.*` and `local.*` are resolved; any other undefined root variable
(`attr`, `node`, `meta`, `env`, `NOMAD_*`, ...) is a runtime reference: its source text
passes through as a literal `"${...}"` string, which the scheduler or client interpolates
later (Nomad's jobspec2 does the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from lark import Token, Tree

from .diagnostics import Position
from .hcl_syntax import node_name, position_of, source_span
from .hcl_templates import Piece, TemplateError, parse_expression, render_pieces, scan_template


class UnknownValue(Exception):
    """The expression refers to something only known at run time."""


UNSET = object()  # the value of a declared variable that was given no value


class EvalError(Exception):
    """An expression cannot be evaluated; an empty `summary` means already reported."""

    def __init__(self, pos: Position, summary: str, detail: str = ""):
        super().__init__(f"{summary}; {detail}")
        self.pos, self.summary, self.detail = pos, summary, detail


@dataclass
class Namespace:
    """`var` or `local`: attribute access names a declared value or fails."""

    kind: str
    values: dict[str, Any]
    pending: set[str] = field(default_factory=set)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_IGNORED = ("new_line_or_comment",)


def _unescape(text: str) -> str:
    def replace(match: re.Match) -> str:
        seq = match.group(1)
        if seq[0] in "uU" and len(seq) > 1:
            return chr(int(seq[1:], 16))
        return _ESCAPES.get(seq, "\\" + seq)

    return _ESCAPE_RE.sub(replace, text)


def to_template_string(value: Any, pos: Position) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return format_number(value)
    if value is None:
        return ""
    raise EvalError(pos, "Invalid template interpolation value",
                    "Cannot include the given value in a string template: string required.")


def format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _children(tree: Tree) -> list:
    return [c for c in tree.children if isinstance(c, Tree) and c.data not in _IGNORED]


class Evaluator:
    """Evaluates expressions against `var`, `local`, functions and for-expression scopes."""

    def __init__(self, text: str, variables: dict[str, Any], locals_: Namespace | None,
                 functions: dict[str, Callable[..., Any]]):
        self.text = text
        self.var = Namespace("var", variables)
        self.local = locals_ or Namespace("local", {})
        self.functions = functions
        self.scopes: list[dict[str, Any]] = []

    # -- entry points -----------------------------------------------------------------
    def attribute_value(self, expr: Tree) -> Any:
        """The value of an attribute; a runtime reference becomes `"${source}"`."""
        try:
            return self.evaluate(expr)
        except UnknownValue:
            return "${" + self.source(expr).strip() + "}"

    def source(self, node: Tree) -> str:
        if node.data == "json_value":
            return node.source_text
        span = source_span(node)
        return self.text[span[0]:span[1]] if span else ""

    # -- dispatch -----------------------------------------------------------------------
    def evaluate(self, node) -> Any:
        method = getattr(self, "_eval_" + node.data, None)
        if method is None:
            raise EvalError(position_of(node), "Unsupported expression",
                            f'Expressions of kind "{node.data}" are not supported here.')
        return method(node)

    def _eval_json_value(self, node) -> Any:
        return self._json(node.value, node.pos)

    def _json(self, value: Any, pos: Position) -> Any:
        if isinstance(value, str):
            return render_template_text(value, self, pos, unwrap=True)
        if isinstance(value, list):
            return [self._json(item, pos) for item in value]
        if isinstance(value, dict):
            return {key: self._json(item, pos) for key, item in value.items()}
        return value

    def _eval_expr_term(self, node: Tree) -> Any:
        return self.evaluate(_children(node)[0])

    def _eval_int_lit(self, node: Tree) -> int:
        return int(str(node.children[0]))

    def _eval_float_lit(self, node: Tree) -> float:
        return float(str(node.children[0]))

    def _eval_literal_value(self, node: Tree) -> Any:
        return {"true": True, "false": False, "null": None}[str(node.children[0])]

    def _eval_tuple(self, node: Tree) -> list:
        return [self.evaluate(child) for child in _children(node)]

    def _eval_object(self, node: Tree) -> dict:
        result: dict[str, Any] = {}
        for elem in _children(node):
            key_node, value_node = _children(elem)[0], _children(elem)[-1]
            result[self._object_key(key_node)] = self.evaluate(value_node)
        return result

    def _object_key(self, key_node: Tree) -> str:
        inner = _children(key_node)
        if not inner or inner[0].data == "keyword":  # a keyword such as `in`
            return node_name(key_node)
        expr = inner[0]
        term = _children(expr)[0] if expr.data == "expr_term" and _children(expr) else None
        if term is not None and term.data == "identifier":
            return node_name(term)
        return to_template_string(self.evaluate(expr), position_of(key_node))

    # -- strings ------------------------------------------------------------------------
    def _eval_string(self, node: Tree) -> str:
        pieces: list[Piece] = []
        for part in node.children:
            if not (isinstance(part, Tree) and part.data == "string_part"):
                continue
            piece = part.children[0]
            if isinstance(piece, Token):
                pieces.append(Piece("text", self._literal_piece(piece)))
            else:
                pieces.append(self._tree_piece(piece))
        if len(pieces) == 1 and pieces[0].kind == "text":
            return pieces[0].text
        if len(pieces) == 1 and pieces[0].kind == "interp":
            return self.single_interpolation(pieces[0])
        return self.render(pieces)

    def single_interpolation(self, piece: Piece) -> Any:
        """`"${expr}"` alone is the value of expr, not its string form (as in HCL)."""
        try:
            return piece.evaluate()
        except UnknownValue:
            return piece.text

    def render(self, pieces: list[Piece]) -> str:
        try:
            return render_pieces(pieces, self.scopes, UnknownValue, to_template_string)
        except TemplateError as exc:
            raise EvalError(exc.pos, exc.summary, exc.detail) from None

    def _tree_piece(self, node: Tree) -> Piece:
        tokens = [c for c in node.children if isinstance(c, Token)]
        exprs = _children(node)
        strip_before = len(tokens) > 1 and tokens[1].type == "STRIP_MARKER"
        strip_after = len(tokens) > 1 and tokens[-2].type == "STRIP_MARKER"
        kind = {"interpolation": "interp", "template_if_start": "if", "template_else": "else",
                "template_endif": "endif", "template_for_start": "for",
                "template_endfor": "endfor"}[node.data]
        names = tuple(node_name(e) for e in exprs if e.data == "identifier") if kind == "for" else ()
        value = exprs[-1] if kind in ("interp", "if", "for") else None
        evaluate = (lambda: self.evaluate(value)) if value is not None else None
        return Piece(kind, self.source(node), evaluate, names, strip_before, strip_after,
                     position_of(node))

    @staticmethod
    def _literal_piece(token: Token) -> str:
        text = str(token)
        if token.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
            # `$${...}` is a literal `${...}`; the grammar lexes it as one token, so the
            # escapes after the `$${` are undone here as HCL's lexer would.
            rest = _unescape(text[3:]).replace("$${", "${").replace("%%{", "%{")
            return text[1:3] + rest
        return _unescape(text)

    def _eval_heredoc_template(self, node: Tree) -> str:
        return self._render_heredoc(str(node.children[0]), trim=False, pos=position_of(node))

    def _eval_heredoc_template_trim(self, node: Tree) -> str:
        return self._render_heredoc(str(node.children[0]), trim=True, pos=position_of(node))

    def _render_heredoc(self, raw: str, trim: bool, pos: Position) -> str:
        lines = raw.split("\n")
        body_lines = lines[1:-2]  # drop "<<EOF", the closing marker and the final ""
        if trim:
            indents = [len(l) - len(l.lstrip(" \t")) for l in body_lines if l.strip()]
            cut = min(indents, default=0)
            body_lines = [l[cut:] for l in body_lines]
        body = "\n".join(body_lines) + ("\n" if body_lines else "")
        return render_template_text(body, self, pos, first_line_offset=1)

    # -- references ---------------------------------------------------------------------
    def _eval_identifier(self, node: Tree) -> Any:
        name = node_name(node)
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name == "var":
            return self.var
        if name == "local":
            return self.local
        raise UnknownValue(name)

    def _eval_get_attr_expr_term(self, node: Tree) -> Any:
        base_node, attr_node = node.children[0], node.children[1]
        name = node_name(_children(attr_node)[0])
        base = self.evaluate(base_node)
        pos = position_of(node) if isinstance(base, Namespace) else position_of(attr_node)
        return self._lookup(base, name, pos)

    def _eval_index_expr_term(self, node: Tree) -> Any:
        base = self.evaluate(node.children[0])
        index_node = node.children[1]
        if index_node.data == "short_index":
            key: Any = int(str(index_node.children[-1]))
        else:
            key = self.evaluate(_children(index_node)[0])
        return self._lookup(base, key, position_of(index_node))

    def _eval_full_splat_expr_term(self, node: Tree) -> list:
        """`list[*].name`: the traversals after the splat apply to every element."""
        base = self.evaluate(node.children[0])
        if base is None:
            return []
        items = base if isinstance(base, list) else [base]
        traversals = [c for c in node.children[1].children if isinstance(c, Tree)]
        return [self._traverse(item, traversals) for item in items]

    _eval_attr_splat_expr_term = _eval_full_splat_expr_term

    def _traverse(self, value: Any, traversals: list[Tree]) -> Any:
        for step in traversals:
            if step.data == "get_attr":
                value = self._lookup(value, node_name(_children(step)[0]), position_of(step))
            elif step.data == "short_index":
                value = self._lookup(value, int(str(step.children[-1])), position_of(step))
            else:
                value = self._lookup(value, self.evaluate(_children(step)[0]), position_of(step))
        return value

    def _lookup(self, base: Any, key: Any, pos: Position) -> Any:
        if isinstance(base, Namespace):
            return self._namespace_value(base, str(key), pos)
        if isinstance(base, dict):
            if str(key) not in base:
                raise EvalError(pos, "Unsupported attribute",
                                f'This object does not have an attribute named "{key}".')
            return base[str(key)]
        if isinstance(base, list):
            try:
                return base[int(key)]
            except (ValueError, IndexError):
                raise EvalError(pos, "Invalid index",
                                "The given key does not identify an element in this collection value.") from None
        raise EvalError(pos, "Unsupported attribute", 'Can\'t access attributes on a primitive-typed value.')

    def _namespace_value(self, ns: Namespace, name: str, pos: Position) -> Any:
        if name in ns.values:
            if ns.values[name] is UNSET:  # already reported as an unset variable
                raise EvalError(pos, "")
            return ns.values[name]
        if name in ns.pending:
            raise _PendingLocal(name)
        if ns.kind == "var":
            raise EvalError(pos, "Reference to undeclared input variable",
                            f'An input variable with the name "{name}" has not been declared.')
        raise EvalError(pos, "Reference to undeclared local value",
                        f'A local value with the name "{name}" has not been declared.')

    # -- operators ----------------------------------------------------------------------
    def _eval_conditional(self, node: Tree) -> Any:
        cond, yes, no = _children(node)
        value = self.evaluate(cond)
        if not isinstance(value, bool):
            raise EvalError(position_of(cond), "Incorrect condition type",
                            "The condition expression must be of type bool.")
        return self.evaluate(yes if value else no)

    def _eval_unary_op(self, node: Tree) -> Any:
        op = str(node.children[0])
        value = self.evaluate(node.children[1])
        if op == "!":
            if not isinstance(value, bool):
                raise EvalError(position_of(node), "Invalid operand", "Unsuitable value for unary operand: bool required.")
            return not value
        return -_number(value, position_of(node))

    def _eval_binary_op(self, node: Tree) -> Any:
        left_node, term = _children(node)[0], _children(node)[1]
        op = str(_children(term)[0].children[0])
        right_node = _children(term)[1]
        left = self.evaluate(left_node)
        if op in ("&&", "||"):
            return _logical(op, left, lambda: self.evaluate(right_node), position_of(node))
        return binary_operation(op, left, self.evaluate(right_node), position_of(node))

    # -- calls and for-expressions ------------------------------------------------------
    def _eval_function_call(self, node: Tree) -> Any:
        names = [c for c in node.children if isinstance(c, Tree) and c.data == "identifier"]
        name = "::".join(node_name(n) for n in names)
        pos = position_of(names[0])
        args_nodes = [c for c in node.children if isinstance(c, Tree) and c.data == "arguments"]
        if name in ("try", "can"):
            return self._try_or_can(name, _children(args_nodes[0]) if args_nodes else [], pos)
        if name == "convert" and args_nodes and len(_children(args_nodes[0])) == 2:
            value_node, type_node = _children(args_nodes[0])
            return self.functions["convert"](self.evaluate(value_node), self.source(type_node).strip())
        args: list[Any] = []
        expand = False
        if args_nodes:
            args = [self.evaluate(a) for a in _children(args_nodes[0])]
            expand = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in args_nodes[0].children)
        if expand:
            if not args or not isinstance(args[-1], list):
                raise EvalError(pos, "Invalid expanding argument value", "The expanding argument (indicated by ...) must be of a tuple or list type.")
            args = args[:-1] + args[-1]
        function = self.functions.get(name)
        if function is None:
            raise EvalError(pos, "Call to unknown function", f'There is no function named "{name}".')
        try:
            return function(*args)
        except EvalError:
            raise
        except UnknownValue:
            raise
        except Exception as exc:  # a function rejected its arguments
            raise EvalError(pos, "Error in function call",
                            f'Call to function "{name}" failed: {exc}.') from None

    def _try_or_can(self, name: str, arg_nodes: list[Tree], pos: Position) -> Any:
        """`try(a, b, ...)`: the first argument that evaluates; `can(a)`: whether it does."""
        if name == "can" and len(arg_nodes) != 1:
            raise EvalError(pos, "Not enough function arguments" if not arg_nodes else "Too many function arguments",
                            'Function "can" expects 1 argument.')
        for arg in arg_nodes:
            try:
                value = self.evaluate(arg)
            except EvalError:
                continue
            return True if name == "can" else value
        if name == "can":
            return False
        raise EvalError(pos, "Error in function call",
                        'Call to function "try" failed: no expression succeeded.')

    def _eval_for_tuple_expr(self, node: Tree) -> list:
        intro, *rest = _children(node)
        value_expr = rest[0]
        cond = rest[1] if len(rest) > 1 else None
        return [self._in_scope(scope, value_expr) for scope in self._for_scopes(intro, cond)]

    def _eval_for_object_expr(self, node: Tree) -> dict:
        intro, key_expr, value_expr, *rest = _children(node)
        cond = rest[0] if rest else None
        result = {}
        for scope in self._for_scopes(intro, cond):
            key = to_template_string(self._in_scope(scope, key_expr), position_of(key_expr))
            result[key] = self._in_scope(scope, value_expr)
        return result

    def _for_scopes(self, intro: Tree, cond: Tree | None):
        parts = _children(intro)
        names = [node_name(p) for p in parts if p.data == "identifier"]
        collection = self.evaluate(parts[-1])
        items = collection.items() if isinstance(collection, dict) else enumerate(collection)
        for key, value in items:
            scope = {names[0]: value} if len(names) == 1 else {names[0]: key, names[1]: value}
            if cond is None or self._in_scope(scope, _children(cond)[0]) is True:
                yield scope

    def _in_scope(self, scope: dict, expr: Tree) -> Any:
        self.scopes.append(scope)
        try:
            return self.evaluate(expr)
        finally:
            self.scopes.pop()


class _PendingLocal(Exception):
    """A local refers to another local that is not evaluated yet."""


def _number(value: Any, pos: Position) -> int | float:
    if isinstance(value, bool):
        raise EvalError(pos, "Invalid operand", "Unsuitable value: a number is required.")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
    raise EvalError(pos, "Invalid operand", "Unsuitable value: a number is required.")


def _logical(op: str, left: Any, right: Callable[[], Any], pos: Position) -> bool:
    if not isinstance(left, bool):
        raise EvalError(pos, "Invalid operand", "Unsuitable value for left operand: bool required.")
    if op == "&&" and not left:
        return False
    if op == "||" and left:
        return True
    value = right()
    if not isinstance(value, bool):
        raise EvalError(pos, "Invalid operand", "Unsuitable value for right operand: bool required.")
    return value


def binary_operation(op: str, left: Any, right: Any, pos: Position) -> Any:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    a, b = _number(left, pos), _number(right, pos)
    if op in ("<", ">", "<=", ">="):
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    if op in ("/", "%") and b == 0:
        raise EvalError(pos, "Operation failed", "Error during operation: can't divide by zero.")
    result = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
              "/": lambda: a / b, "%": lambda: a % b}[op]()
    if isinstance(result, float) and result.is_integer() and op == "/":
        return int(result)
    return result


def render_template_text(body: str, evaluator: Evaluator, pos: Position,
                         first_line_offset: int = 0, unwrap: bool = False) -> Any:
    """Render raw template text (a heredoc body, an HCL-JSON string)."""
    if "{" not in body:
        return body.replace("$${", "${").replace("%%{", "%{")

    def expression(source: str, where: Position) -> Callable[[], Any]:
        return lambda: _evaluate_source(source, evaluator, where)

    try:
        pieces = scan_template(body, pos, expression, first_line_offset)
    except TemplateError as exc:
        raise EvalError(exc.pos, exc.summary, exc.detail) from None
    if unwrap and len(pieces) == 1 and pieces[0].kind == "interp":
        return evaluator.single_interpolation(pieces[0])
    return evaluator.render(pieces)


def _evaluate_source(source: str, evaluator: Evaluator, pos: Position) -> Any:
    expr = parse_expression(source)
    if expr is None:
        raise UnknownValue(source)  # not an HCL expression (e.g. shell syntax): keep it
    sub = Evaluator(f"x = {source}\n", {}, evaluator.local, evaluator.functions)
    sub.var, sub.scopes = evaluator.var, evaluator.scopes
    try:
        return sub.evaluate(expr)
    except EvalError as exc:  # positions inside the template are relative; report the sequence
        raise EvalError(pos, exc.summary, exc.detail) from None
