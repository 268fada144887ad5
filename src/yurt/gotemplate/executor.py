"""Go text/template execution over Python builtins (dicts play Go maps).

Errors read like Go's: `template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`.
"""

import inspect
from typing import Any, Callable

from . import nodes as n
from .builtins import FuncError
from .parser import Tree
from .values import go_print, go_type, truth

MAX_DEPTH = 100  # nested {{template}} calls (Go allows 100000; Python's stack does not)
_NO_FINAL = object()


class ExecError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _wrong_args(fn: Callable, count: int, hidden: int = 0) -> str | None:
    """Go's `want N` when fn cannot take `count` positional arguments (`hidden` ones are not shown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in params if p.default is p.empty)
    variadic = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    if variadic and count >= required:
        return None
    if not variadic and required <= count <= len(params):
        return None
    return f"want at least {required - hidden}" if variadic else f"want {required - hidden}"


class Executor:
    def __init__(self, trees: dict[str, Tree], funcs: dict[str, Callable], missing_key: str = "default"):
        self.trees = trees
        self.funcs = funcs
        self.missing_key = missing_key
        self.out: list[str] = []
        self.tree: Tree | None = None
        self.node: n.Node | None = None
        self.vars: list[tuple[str, Any]] = []
        self.depth = 0
        self.nil_data = False

    # --- errors ----------------------------------------------------------------------------

    def at(self, node: n.Node) -> None:
        self.node = node

    def error(self, message: str) -> ExecError:
        assert self.tree is not None
        if self.node is None:
            return ExecError(f"template: {self.tree.name}: {message}")
        context = str(self.node)
        if len(context) > 20:
            context = context[:20] + "..."
        location = self.tree.location(self.node)
        return ExecError(f'template: {location}: executing "{self.tree.name}" at <{context}>: {message}')

    # --- variables -------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def set_top_var(self, depth: int, value: Any) -> None:
        name = self.vars[-depth][0]
        self.vars[-depth] = (name, value)

    def var_value(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise self.error(f"undefined variable: {name}")

    # --- entry -----------------------------------------------------------------------------

    def execute(self, tree: Tree, data: Any) -> str:
        self.tree = tree
        self.vars = [("$", data)]
        self.nil_data = data is None
        try:
            self.walk(data, tree.root)
        except RecursionError:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})") from None
        return "".join(self.out)

    # --- walking ---------------------------------------------------------------------------

    def walk(self, dot: Any, node: n.Node) -> None:
        self.at(node)
        if isinstance(node, n.TextNode):
            self.out.append(node.text)
        elif isinstance(node, n.ListNode):
            for item in node.nodes:
                self.walk(dot, item)
        elif isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(go_print(value))
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, (n.IfNode, n.WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break()
        elif isinstance(node, n.ContinueNode):
            raise _Continue()
        else:
            raise self.error(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: n.BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if isinstance(node, n.WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def _range_items(self, node: n.RangeNode, value: Any) -> list[tuple[Any, Any]]:
        if value is None:
            return []
        if isinstance(value, dict):
            return [(k, value[k]) for k in sorted(value, key=lambda k: (not isinstance(k, (int, float)), k))]
        if isinstance(value, (list, tuple)):
            return list(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                raise self.error(f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        raise self.error(f"range can't iterate over {go_print(value, False)}")

    def walk_range(self, dot: Any, node: n.RangeNode) -> None:
        self.at(node)
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            self.at(node)
            items = self._range_items(node, value)
            decl, assign = node.pipe.decl, node.pipe.is_assign
            for key, elem in items:
                if decl:
                    if assign:
                        self.set_var(decl[0].idents[0], key if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if assign:
                        self.set_var(decl[1].idents[0], elem)
                    else:
                        self.set_top_var(2, key)
                inner = self.mark()
                try:
                    self.walk(elem, node.body)
                except _Break:
                    break
                except _Continue:
                    pass
                finally:
                    self.pop(inner)
            if not items and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.error(f'no template "{node.name}" associated with template "{self.tree.name}"')
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        if self.depth >= MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        saved = (self.tree, self.vars, self.node)
        self.tree, self.vars = tree, [("$", value)]
        self.depth += 1
        try:
            self.walk(value, tree.root)
        finally:
            self.depth -= 1
            self.tree, self.vars, self.node = saved

    def run_nested(self, name: str, data: Any) -> str:
        """Execute the template `name` into a string (for functions such as executeTemplate)."""
        tree = self.trees.get(name)
        if tree is None:
            raise FuncError(f'template {n.quote(name)} not defined')
        if self.depth >= MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        nested = Executor(self.trees, self.funcs, self.missing_key)
        nested.depth = self.depth + 1
        nested.nil_data = self.nil_data
        nested.tree, nested.vars = tree, [("$", data)]
        nested.walk(data, tree.root)
        return "".join(nested.out)

    # --- evaluation ------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: n.PipeNode) -> Any:
        self.at(pipe)
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append((var.idents[0], value))
        return value

    def not_a_function(self, args: list, final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.NilNode):
            raise self.error("nil is not a command")
        return self.eval_arg(dot, first)

    def eval_chain(self, dot: Any, chain: n.ChainNode, args: list | None, final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, n.NilNode):
            raise self.error(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, var: n.VariableNode, args: list | None, final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args or [var], final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: n.Node, idents: list[str], args: list | None,
                         final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.eval_field(name, node, None, _NO_FINAL, receiver)
        return self.eval_field(idents[-1], node, args, final, receiver)

    def eval_field(self, name: str, node: n.Node, args: list | None, final: Any, receiver: Any) -> Any:
        has_args = (args is not None and len(args) > 1) or final is not _NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missing_key == "error":
                raise self.error(f'map has no entry for key "{name}"')
            return None
        if receiver is None:
            if self.nil_data and self.missing_key == "error":
                raise self.error(f'nil data; no entry for key "{name}"')
            if self.nil_data:
                return None
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        raise self.error(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(self, dot: Any, node: n.IdentifierNode, cmd: n.Node, args: list | None, final: Any) -> Any:
        self.at(node)
        name = node.name
        fn = self.funcs.get(name)
        if fn is None:
            raise self.error(f'"{name}" is not a defined function')
        operands = (args or [node])[1:]
        if name in ("and", "or"):
            return self.eval_logic(dot, name, operands, final)
        argv = [self.eval_arg(dot, arg) for arg in operands]
        if final is not _NO_FINAL:
            argv.append(final)
        self.at(node)
        hidden = 1 if getattr(fn, "wants_executor", False) else 0
        want = _wrong_args(fn, len(argv) + hidden, hidden)
        if want:
            raise self.error(f"wrong number of args for {name}: {want} got {len(argv)}")
        if hidden:
            argv.insert(0, self)
        try:
            return fn(*argv)
        except ExecError:
            raise
        except (FuncError, ValueError, TypeError, KeyError, IndexError, OSError, ArithmeticError) as exc:
            self.at(cmd)
            raise self.error(f"error calling {name}: {exc}") from None

    def eval_logic(self, dot: Any, name: str, operands: list, final: Any) -> Any:
        count = len(operands) + (final is not _NO_FINAL)
        if count < 1:
            raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for arg in operands:
            value = self.eval_arg(dot, arg)
            if truth(value) == (name == "or"):
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def eval_arg(self, dot: Any, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.DotNode):
            return dot
        if isinstance(node, n.NilNode):
            return None
        if isinstance(node, n.FieldNode):
            return self.eval_field_chain(dot, dot, node, node.idents, [node], _NO_FINAL)
        if isinstance(node, n.VariableNode):
            return self.eval_variable(dot, node, None, _NO_FINAL)
        if isinstance(node, n.PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, n.IdentifierNode):
            return self.eval_function(dot, node, node, None, _NO_FINAL)
        if isinstance(node, n.ChainNode):
            return self.eval_chain(dot, node, None, _NO_FINAL)
        if isinstance(node, n.BoolNode):
            return node.value
        if isinstance(node, n.NumberNode):
            return node.value
        if isinstance(node, n.StringNode):
            return node.value
        raise self.error(f"can't handle {node} for arg")
