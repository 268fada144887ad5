"""consul-template's functions that need no Consul, Vault or Nomad service.

`ConsulFuncs(env, sandbox, now).funcs()` gives the function map for a task template;
`files` and `env_keys` record what a render read, so a watcher can re-render on change.
Functions that need a service fail with a message naming the function.
"""

import base64
import hashlib
import json
import math
import os
import re
from datetime import datetime, timezone
from typing import Any, Callable

import yaml

from .builtins import FuncError, wants_executor
from .timefmt import go_format
from .values import go_json, go_print, go_type

SERVICE_FUNCS = {
    "Consul": ("key", "keyExists", "keyOrDefault", "ls", "safeLs", "tree", "safeTree", "service", "services",
               "connect", "caRoots", "caLeaf", "datacenters", "node", "nodes", "partitions", "peerings",
               "exportedServices", "byTag"),
    "Vault": ("secret", "secrets", "pkiCert"),
    "Nomad": ("nomadService", "nomadServices", "nomadVar", "nomadVarList", "nomadVarListSafe", "nomadVarExists",
              "nomadSecret"),
    "the host's network or programs": ("sockaddr", "plugin", "writeToFile"),
}


def _unsupported(name: str, service: str) -> Callable:
    def fail(*_args: Any) -> Any:
        raise FuncError(f'function "{name}" is not supported by yurt (it needs {service})')

    fail.__name__ = name
    return fail


def _number(value: Any, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FuncError(f"{name}: unknown type for {go_print(value, False)!r} ({go_type(value)})")
    return value


def _arith(name: str, op: Callable[[Any, Any], Any]) -> Callable:
    def apply(b: Any, a: Any) -> Any:  # consul-template: `{{ a | NAME b }}` is a NAME b
        x, y = _number(a, name), _number(b, name)
        if name in ("divide", "modulo") and y == 0:
            raise FuncError(f"{name}: division by 0")
        result = op(x, y)
        return int(result) if isinstance(x, int) and isinstance(y, int) else float(result)

    apply.__name__ = name
    return apply


def _int_div(x: Any, y: Any) -> Any:
    if isinstance(x, int) and isinstance(y, int):
        quotient = abs(x) // abs(y)
        return quotient if (x >= 0) == (y >= 0) else -quotient
    return x / y


def _int_mod(x: Any, y: Any) -> Any:
    if isinstance(x, int) and isinstance(y, int):
        return x - _int_div(x, y) * y
    return math.fmod(x, y)


def _go_int(text: str, name: str, base: int = 10, unsigned: bool = False) -> int:
    try:
        value = int(text.replace("_", "x"), base)  # Go rejects underscores with an explicit base
    except (ValueError, AttributeError):
        func = "ParseUint" if unsigned else "ParseInt"
        raise FuncError(f'{name}: strconv.{func}: parsing {json.dumps(text)}: invalid syntax') from None
    if unsigned and value < 0:
        raise FuncError(f'{name}: strconv.ParseUint: parsing {json.dumps(text)}: invalid syntax')
    return value


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing {json.dumps(text)}: invalid syntax') from None


_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def parse_bool(text: str) -> bool:
    if text not in _BOOLS:
        raise FuncError(f'parseBool: strconv.ParseBool: parsing {json.dumps(text)}: invalid syntax')
    return _BOOLS[text]


def parse_json(text: str) -> Any:
    if text == "":
        return {}
    try:
        return json.loads(text, parse_int=float)  # Go decodes every JSON number as float64
    except json.JSONDecodeError as exc:
        raise FuncError(f"parseJSON: {exc}") from None


def parse_yaml(text: str) -> Any:
    if text == "":
        return {}
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FuncError(f"parseYAML: {exc}") from None


def _yaml_ready(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)  # Go's yaml prints float64(1) as 1
    if isinstance(value, dict):
        return {str(k): _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_ready(v) for v in value]
    return value


def to_yaml(value: Any) -> str:
    if not isinstance(value, dict):
        raise FuncError(f"toYAML: wrong type {go_type(value)}, expected map")
    return yaml.safe_dump(_yaml_ready(value), default_flow_style=False, sort_keys=True, allow_unicode=True).strip()


def split(sep: str, text: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    return text.split(sep) if sep else list(text)


def join(sep: str, items: list) -> str:
    if not isinstance(items, (list, tuple)):
        raise FuncError(f"join: wrong type {go_type(items)}, expected a list")
    return sep.join(go_print(i, False) for i in items)


def to_title(text: str) -> str:
    return re.sub(r"(^|[^\w'])([^\W_])", lambda m: m.group(1) + m.group(2).upper(), text)


def contained(haystack: Any, needle: Any) -> bool:
    """consul-template's `in`: element of a list, or substring of a string."""
    if isinstance(haystack, (list, tuple)):
        return any(type(item) is type(needle) and item == needle for item in haystack)
    if isinstance(haystack, str) and isinstance(needle, str):
        return needle in haystack
    return False


def _go_regex(pattern: str, name: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FuncError(f"{name}: error parsing regexp: {exc}") from None


def regex_replace_all(pattern: str, replacement: str, text: str) -> str:
    # Go's $1 / ${name} become Python's \g<1> / \g<name>; $$ is a literal $.
    python_repl = re.sub(r"\$(\$|\{(\w+)\}|(\w+))", lambda m: "$" if m.group(1) == "$" else
                         f"\\g<{m.group(2) or m.group(3)}>", replacement.replace("\\", "\\\\"))
    regex = _go_regex(pattern, "regexReplaceAll")
    try:
        return regex.sub(python_repl, text)
    except (re.error, IndexError) as exc:
        raise FuncError(f"regexReplaceAll: {exc}") from None


def base64_decode(text: str, urlsafe: bool = False) -> str:
    try:
        raw = base64.urlsafe_b64decode(text) if urlsafe else base64.b64decode(text, validate=True)
        return raw.decode("utf-8", "replace")
    except (ValueError, TypeError) as exc:
        name = "base64URLDecode" if urlsafe else "base64Decode"
        raise FuncError(f"{name}: illegal base64 data: {exc}") from None


def loop(*bounds: Any) -> list[int]:
    ints = [b for b in bounds if isinstance(b, int) and not isinstance(b, bool)]
    if len(ints) != len(bounds) or len(bounds) not in (1, 2):
        raise FuncError(f"loop: wrong number of arguments, expected 1 or 2, but got {len(bounds)}")
    return list(range(*bounds))


def indent(spaces: int, text: str) -> str:
    if spaces < 0:
        raise FuncError("indent value must be a positive integer")
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.split("\n"))


def _pure_funcs() -> dict[str, Callable]:
    return {
        "split": split,
        "join": join,
        "toUpper": lambda s: s.upper(),
        "toLower": lambda s: s.lower(),
        "toTitle": to_title,
        "trimSpace": lambda s: s.strip(" \t\n\r\v\f"),
        "trimPrefix": lambda prefix, s: s.removeprefix(prefix),
        "trimSuffix": lambda suffix, s: s.removesuffix(suffix),
        "replaceAll": lambda old, new, s: s.replace(old, new),
        "parseInt": lambda s: _go_int(s, "parseInt"),
        "parseUint": lambda s: _go_int(s, "parseUint", unsigned=True),
        "parseFloat": parse_float,
        "parseBool": parse_bool,
        "parseJSON": parse_json,
        "parseYAML": parse_yaml,
        "toJSON": go_json,
        "toJSONPretty": lambda v: go_json(v, indent=2),
        "toUnescapedJSON": lambda v: go_json(v, escape_html=False),
        "toUnescapedJSONPretty": lambda v: go_json(v, indent=2, escape_html=False),
        "toYAML": to_yaml,
        "contains": lambda v, haystack: contained(haystack, v),
        "in": contained,
        "containsAll": lambda vs, haystack: all(contained(haystack, v) for v in vs),
        "containsAny": lambda vs, haystack: any(contained(haystack, v) for v in vs),
        "containsNone": lambda vs, haystack: not any(contained(haystack, v) for v in vs),
        "containsNotAll": lambda vs, haystack: not all(contained(haystack, v) for v in vs),
        "regexMatch": lambda pattern, s: _go_regex(pattern, "regexMatch").search(s) is not None,
        "regexReplaceAll": regex_replace_all,
        "base64Encode": lambda s: base64.b64encode(s.encode()).decode(),
        "base64Decode": base64_decode,
        "base64URLEncode": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        "base64URLDecode": lambda s: base64_decode(s, urlsafe=True),
        "sha256Hex": lambda s: hashlib.sha256(s.encode()).hexdigest(),
        "md5sum": lambda s: hashlib.md5(s.encode()).hexdigest(),
        "add": _arith("add", lambda x, y: x + y),
        "subtract": _arith("subtract", lambda x, y: x - y),
        "multiply": _arith("multiply", lambda x, y: x * y),
        "divide": _arith("divide", _int_div),
        "modulo": _arith("modulo", _int_mod),
        "minimum": lambda b, a: min(_number(a, "minimum"), _number(b, "minimum")),
        "maximum": lambda b, a: max(_number(a, "maximum"), _number(b, "maximum")),
        "loop": loop,
        "indent": indent,
    }


@wants_executor
def execute_template(executor: Any, name: str, *data: Any) -> str:
    """consul-template's executeTemplate: a `define`d template's output as a string."""
    if len(data) > 1:
        raise FuncError(f"executeTemplate: wrong number of arguments, expected 1 or 2, but got {len(data) + 1}")
    return executor.run_nested(name, data[0] if data else None)


class ConsulFuncs:
    """The function map for one render of a task template, recording what it read."""

    def __init__(self, env: dict[str, str], sandbox: str, now: Callable[[], float] | None = None):
        self.env = env
        self.sandbox = os.path.realpath(sandbox)
        self.now = now
        self.files: set[str] = set()
        self.env_keys: set[str] = set()

    def sandboxed(self, path: str) -> str:
        full = os.path.realpath(os.path.join(self.sandbox, path.lstrip("/") if os.path.isabs(path) and not
                                             path.startswith(self.sandbox) else path))
        if full != self.sandbox and not full.startswith(self.sandbox + os.sep):
            raise FuncError(f"'{path}' is outside of sandbox")
        return full

    def file(self, path: str) -> str:
        full = self.sandboxed(path)
        self.files.add(full)
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError as exc:
            raise FuncError(f"file: open {path}: {(exc.strerror or str(exc)).lower()}") from None

    def getenv(self, name: str) -> str:
        self.env_keys.add(name)
        return self.env.get(name, "")

    def env_or_default(self, name: str, default: str) -> str:
        self.env_keys.add(name)
        return self.env.get(name) or default

    def must_env(self, name: str) -> str:
        self.env_keys.add(name)
        if name not in self.env:
            raise FuncError(f'mustEnv: environment variable "{name}" is not set')
        return self.env[name]

    def timestamp(self, *layout: str) -> str:
        when = datetime.fromtimestamp(self.now() if self.now else datetime.now().timestamp(), timezone.utc)
        if len(layout) > 1:
            return f"timestamp: wrong number of arguments, expected 0 or 1, but got {len(layout)}"
        if layout and layout[0] == "unix":
            return str(int(when.timestamp()))
        return go_format(when, layout[0] if layout else "2006-01-02T15:04:05Z07:00")

    def funcs(self) -> dict[str, Callable]:
        out = _pure_funcs()
        for service, names in SERVICE_FUNCS.items():
            out.update({name: _unsupported(name, service) for name in names})
        out.update({"env": self.getenv, "envOrDefault": self.env_or_default, "mustEnv": self.must_env,
                    "file": self.file, "timestamp": self.timestamp, "executeTemplate": execute_template})
        return out
