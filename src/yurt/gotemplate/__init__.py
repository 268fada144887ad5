"""Go `text/template`, shared by the CLI's `-t` output and the client's task templates.

    tmpl = Template("name", text, funcs={...}, left="{{", right="}}", missing_key="default")
    tmpl.execute(data) -> str          # raises TemplateError with Go's message text

Parse errors read `template: NAME:LINE: MESSAGE`; execution errors
`template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`, as Go prints them.
`define`, `template`, `block`, `if/else if/else`, `with/else with/else`, `range` (lists, maps in
key order, integers; `$i, $v :=`; `else`; `break`/`continue`), variables and assignment, pipelines,
parentheses, trim markers, comments and custom delimiters are supported. Data is JSON builtins.
"""

from typing import Any, Callable

from .builtins import BUILTINS, FuncError
from .executor import ExecError, Executor
from .parser import ParseError, Tree, parse_templates
from .values import go_json, go_print, go_type, printf, sprint, truth

__all__ = ["BUILTINS", "FuncError", "Template", "TemplateError", "go_json", "go_print", "go_type", "printf",
           "render", "sprint", "truth"]


class TemplateError(Exception):
    """A parse or execution error; str() is Go's message."""


class Template:
    def __init__(self, name: str, text: str, funcs: dict[str, Callable] | None = None, left: str = "{{",
                 right: str = "}}", missing_key: str = "default"):
        self.name = name
        self.funcs = {**BUILTINS, **(funcs or {})}
        self.missing_key = missing_key
        try:
            self.trees: dict[str, Tree] = parse_templates(text, name, self.funcs.__contains__, left, right)
        except ParseError as exc:
            raise TemplateError(str(exc)) from None

    def execute(self, data: Any = None, name: str | None = None) -> str:
        tree = self.trees.get(name or self.name)
        if tree is None:
            raise TemplateError(f'template: no template "{name}" associated with template "{self.name}"')
        try:
            return Executor(self.trees, self.funcs, self.missing_key).execute(tree, data)
        except ExecError as exc:
            raise TemplateError(str(exc)) from None


def render(text: str, data: Any = None, funcs: dict[str, Callable] | None = None, name: str = "",
           left: str = "{{", right: str = "}}", missing_key: str = "default") -> str:
    """Parse and execute in one step."""
    return Template(name, text, funcs, left, right, missing_key).execute(data)
