"""Task `template` blocks rendered as Nomad does with consul-template.

The engine is Go's text/template (`yurt.gotemplate`) with consul-template's functions that need
no Consul, Vault or Nomad service (`env`, `file`, `timestamp`, `split`, `toJSON`, ...); the others
(`key`, `service`, `nomadService`, `secret`, ...) fail the task with a message naming the function.

`TaskTemplates(templates, task_dir, env)` renders every template (`source` relative to the task
dir, or `data`) into its `destination` with `perms`, `uid`/`gid` and custom delimiters, and
remembers what each render read (the source file, files read through `file`, env values), so
`changed_inputs()` / `rerender()` can pick up changes while the task runs (see `template_watch`).
"""

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from yurt.gotemplate import Template, TemplateError as GoTemplateError
from yurt.gotemplate.consul import ConsulFuncs

CHANGE_RESTART, CHANGE_SIGNAL, CHANGE_NOOP, CHANGE_SCRIPT = "restart", "signal", "noop", "script"


class TemplateError(Exception):
    pass


def render(text: str, env: dict[str, str], left: str = "{{", right: str = "}}", name: str = "",
           task_dir: str = ".", now: Callable[[], float] | None = None, missing_key: bool = False) -> str:
    """Render one consul-template text (dot is nil, as in consul-template)."""
    return _render(text, env, left, right, name, task_dir, now, missing_key)[0]


def _render(text: str, env: dict[str, str], left: str, right: str, name: str, task_dir: str,
            now: Callable[[], float] | None, missing_key: bool) -> tuple[str, ConsulFuncs]:
    funcs = ConsulFuncs(env, task_dir, now)
    try:
        tmpl = Template(name, text, funcs.funcs(), left or "{{", right or "}}", "error" if missing_key else "default")
        return tmpl.execute(None), funcs
    except GoTemplateError as exc:
        raise TemplateError(str(exc)) from None


# --- env files (go-envparse) --------------------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")
_DQ_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def _env_value(raw: str, lineno: int) -> str:
    if raw.startswith('"'):
        match = re.match(r'"((?:[^"\\]|\\.)*)"\s*(#.*)?$', raw)
        if not match:
            raise TemplateError(f"line {lineno}: unterminated double-quoted value")
        return re.sub(r"\\(.)", lambda m: _DQ_ESCAPES.get(m.group(1), "\\" + m.group(1)), match.group(1))
    if raw.startswith("'"):
        match = re.match(r"'([^']*)'\s*(#.*)?$", raw)
        if not match:
            raise TemplateError(f"line {lineno}: unterminated single-quoted value")
        return match.group(1)
    return re.sub(r"\s+#.*$", "", raw)


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines (`export`, quotes, comments) as go-envparse reads them."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            raise TemplateError(f"line {lineno}: expected KEY=VALUE, got {line.strip()!r}")
        out[match.group(1)] = _env_value(match.group(2), lineno)
    return out


# --- one template block ---------------------------------------------------------------------------

def _interpolate(path: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: env.get(m.group(1).strip(), ""), path)


def _fingerprint_file(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


@dataclass
class TemplateBlock:
    """One `template` block with what its last render read and wrote."""

    spec: dict[str, Any]
    index: int
    task_dir: str
    source: str = ""  # host path of `source`, "" for `data`
    dest: str = ""
    content: str | None = None
    files: dict[str, str | None] = field(default_factory=dict)  # path -> sha256 at render
    env: dict[str, str] = field(default_factory=dict)  # key -> value read at render

    @property
    def change_mode(self) -> str:
        return self.spec.get("ChangeMode") or CHANGE_RESTART

    @property
    def name(self) -> str:
        return self.spec.get("SourcePath") or self.spec.get("DestPath") or f"template {self.index + 1}"

    def resolve(self, env: dict[str, str]) -> None:
        alloc_root = os.path.realpath(os.path.dirname(self.task_dir))
        self.dest = _inside(alloc_root, self.task_dir, _interpolate(self.spec.get("DestPath") or "", env), "destination")
        source = _interpolate(self.spec.get("SourcePath") or "", env)
        self.source = _inside(alloc_root, self.task_dir, source, "source") if source else ""

    def text(self) -> str:
        if not self.source:
            return self.spec.get("EmbeddedTmpl") or ""
        try:
            with open(self.source) as f:
                return f.read()
        except OSError as exc:
            raise TemplateError(f'template: cannot read source "{self.spec.get("SourcePath")}": {exc.strerror}') from None

    def render(self, env: dict[str, str], now: Callable[[], float] | None) -> str:
        text = self.text()
        output, funcs = _render(text, env, self.spec.get("LeftDelim", ""), self.spec.get("RightDelim", ""), self.name,
                                self.task_dir, now, bool(self.spec.get("ErrMissingKey")))
        self.files = {path: _fingerprint_file(path) for path in funcs.files}
        if self.source:
            self.files[self.source] = _fingerprint_file(self.source)
        self.env = {key: env.get(key, "") for key in funcs.env_keys}
        return output

    def inputs(self, env: dict[str, str]) -> tuple:
        """What the inputs of the last render look like now (compare with `recorded_inputs`)."""
        files = tuple(sorted((path, _fingerprint_file(path)) for path in self.files))
        return files, tuple(sorted((key, env.get(key, "")) for key in self.env))

    def recorded_inputs(self) -> tuple:
        return tuple(sorted(self.files.items())), tuple(sorted(self.env.items()))

    def write(self, output: str) -> bool:
        """Write the output if it differs from the file; True when the file changed."""
        try:
            with open(self.dest) as f:
                unchanged = f.read() == output
        except OSError:
            unchanged = False
        self.content = output
        if unchanged:
            self._apply_perms()
            return False
        os.makedirs(os.path.dirname(self.dest), exist_ok=True)
        tmp = f"{self.dest}.yurt-tmp"
        with open(tmp, "w") as f:
            f.write(output)
        os.replace(tmp, self.dest)
        self._apply_perms()
        return True

    def _apply_perms(self) -> None:
        perms = str(self.spec.get("Perms") or "0644")
        try:
            mode = int(perms, 8)
            if not 0 <= mode <= 0o7777:
                raise ValueError("value out of range")
        except ValueError as exc:
            raise TemplateError(f'Failed to parse "{perms}" as octal: {exc}') from None
        os.chmod(self.dest, mode)
        uid, gid = self.spec.get("Uid"), self.spec.get("Gid")
        uid = uid if isinstance(uid, int) and uid >= 0 else -1
        gid = gid if isinstance(gid, int) and gid >= 0 else -1
        if uid >= 0 or gid >= 0:
            try:
                os.chown(self.dest, uid, gid)
            except OSError as exc:
                raise TemplateError(f'template: cannot set owner of "{self.spec.get("DestPath")}": {exc.strerror}') from None


def _inside(alloc_root: str, task_dir: str, path: str, what: str) -> str:
    if not path:
        if what == "destination":
            raise TemplateError("template: destination is required")
        return ""
    real_task = os.path.realpath(task_dir)
    if os.path.isabs(path) and (path == alloc_root or path.startswith(alloc_root + os.sep)):
        full = os.path.realpath(path)
    else:
        full = os.path.realpath(os.path.join(real_task, path.lstrip("/") if os.path.isabs(path) else path))
    if full != alloc_root and not full.startswith(alloc_root + os.sep):
        raise TemplateError(f'template {what} path "{path}" escapes alloc directory')
    return full


# --- all templates of a task ------------------------------------------------------------------------

class TaskTemplates:
    """The templates of one task: first render, env vars, and change detection for re-renders."""

    def __init__(self, templates: list[dict[str, Any]] | None, task_dir: str, now: Callable[[], float] | None = None):
        self.blocks = [TemplateBlock(dict(spec), i, task_dir) for i, spec in enumerate(templates or ())]
        self.now = now
        self.render_env: dict[str, str] = {}  # the task env of the first render (without template env)

    def render_all(self, env: dict[str, str]) -> dict[str, str]:
        """Render every template; returns the env vars of `env = true` templates.

        As in Nomad, every template sees the task env only: env files join the env afterwards.
        """
        self.render_env = dict(env)
        for block in self.blocks:
            block.resolve(env)
            block.write(block.render(env, self.now))
        return self.template_env()

    def _env_of(self, block: TemplateBlock) -> dict[str, str]:
        try:
            return parse_env_file(block.content or "")
        except TemplateError as exc:
            raise TemplateError(f'error parsing env template "{block.spec.get("DestPath")}": {exc}') from None

    def template_env(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        for block in self.blocks:
            if block.spec.get("Envvars"):
                extra.update(self._env_of(block))
        return extra

    def changed_inputs(self, env: dict[str, str]) -> list[int]:
        """Indexes of templates whose source, files or env values differ from their last render."""
        return [b.index for b in self.blocks
                if b.content is not None and not b.spec.get("Once") and b.inputs(env) != b.recorded_inputs()]

    def rerender(self, indexes: list[int], env: dict[str, str]) -> list[int]:
        """Render these templates again; returns those whose destination file changed."""
        changed = []
        for i in indexes:
            block = self.blocks[i]
            if block.write(block.render(env, self.now)):
                changed.append(i)
        return changed


def render_templates(templates: list[dict[str, Any]] | None, task_dir: str, env: dict[str, str],
                     now: Callable[[], float] | None = None) -> dict[str, str]:
    """Render every template into the task dir; returns env vars from `env = true` ones."""
    return TaskTemplates(templates, task_dir, now).render_all(env)
