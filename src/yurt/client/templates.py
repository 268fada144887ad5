"""Task `template` blocks: a small subset of consul-template.

Supported: static text, `{{ env "NAME" }}`, string literals, comments `{{/* */}}`, trim
markers `{{-` / `-}}`, custom delimiters, `source`/`data`, `destination` inside the task
dir, `perms`, and `env = true` (the rendered file's KEY=VALUE lines join the task env).
Any other function (`key`, `service`, `nomadService`, `secret`, ...) fails the task with
a message naming the function, instead of silently rendering nothing.
"""

import os
import re
import shlex
from typing import Any

from .allocfs import FSError, resolve


class TemplateError(Exception):
    pass


_CONTROL = {"range", "if", "with", "else", "end", "template", "define", "block"}


def _actions(left: str, right: str) -> re.Pattern:
    return re.compile(r"(\s*)" + re.escape(left) + r"(-?)(.*?)(-?)" + re.escape(right) + r"(\s*)", re.S)


def _evaluate(expr: str, env: dict[str, str]) -> str:
    expr = expr.strip()
    if expr.startswith("/*") and expr.endswith("*/"):
        return ""
    try:
        words = shlex.split(expr)
    except ValueError as exc:
        raise TemplateError(f"template: cannot parse {{{{ {expr} }}}}: {exc}") from None
    if len(words) == 2 and words[0] == "env":
        return env.get(words[1], "")
    if expr.startswith('"') and len(words) == 1:
        return words[0]
    name = words[0] if words else expr
    if name in _CONTROL and len(words) > 1:
        name = words[1].lstrip("(")  # {{ range nomadService "x" }}: name the function
    raise TemplateError(f'template: function "{name}" is not supported by yurt (in {{{{ {expr} }}}})')


def render(text: str, env: dict[str, str], left: str = "{{", right: str = "}}") -> str:
    def sub(m: re.Match) -> str:
        before, trim_left, expr, trim_right, after = m.groups()
        value = _evaluate(expr, env)
        return ("" if trim_left else before) + value + ("" if trim_right else after)

    return _actions(left or "{{", right or "}}").sub(sub, text)


def parse_env_file(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip().removeprefix("export ").strip()] = value.strip().strip('"').strip("'")
    return out


def _template_text(tmpl: dict[str, Any], task_dir: str) -> str:
    if tmpl.get("EmbeddedTmpl"):
        return tmpl["EmbeddedTmpl"]
    source = tmpl.get("SourcePath") or ""
    if not source:
        return ""
    path = source if os.path.isabs(source) else os.path.join(task_dir, source)
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        raise TemplateError(f'template: cannot read source "{source}": {exc.strerror}') from None


def render_templates(templates: list[dict[str, Any]] | None, task_dir: str, env: dict[str, str]) -> dict[str, str]:
    """Render every template into the task dir; returns env vars from `env = true` ones."""
    extra_env: dict[str, str] = {}
    for tmpl in templates or ():
        dest = tmpl.get("DestPath") or ""
        if not dest:
            raise TemplateError("template: destination is required")
        try:
            full = resolve(task_dir, dest)
        except FSError:
            raise TemplateError(f'template: destination "{dest}" escapes the task directory') from None
        text = render(_template_text(tmpl, task_dir), {**env, **extra_env}, tmpl.get("LeftDelim", ""), tmpl.get("RightDelim", ""))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, int(str(tmpl.get("Perms") or "0644"), 8))
        if tmpl.get("Envvars"):
            extra_env.update(parse_env_file(text))
    return extra_env
