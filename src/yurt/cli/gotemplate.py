"""Go text/template for the CLI's `-t` flag: the shared engine plus the CLI's extra functions."""

from typing import Any, Callable

from yurt.gotemplate import Template, TemplateError

from .template_funcs import CLI_FUNCS

__all__ = ["TemplateError", "render"]


def render(source: str, data: Any, funcs: dict[str, Callable] | None = None) -> str:
    """Render Go template `source` against `data` (JSON builtins), as `nomad ... -t` does."""
    return Template("format", source, {**CLI_FUNCS, **(funcs or {})}).execute(data)
