"""The HCL2 functions a jobspec may call (Nomad's jobspec2 function table, as far as
it is useful in job files). Filesystem functions exist only when `allow_fs` is set."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import urllib.parse
import uuid
from typing import Any, Callable

from .hcl_functions_more import MORE_FUNCTIONS, fileset_function


def _format_verb(match: re.Match, args: list, state: dict) -> str:
    verb = match.group(2)
    if verb == "%":
        return "%"
    value = args[state["i"]]
    state["i"] += 1
    flags = match.group(1)
    if verb == "q":
        return json.dumps(str(value))
    if verb in ("v", "s"):
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, separators=(",", ":"))
        return ("%" + flags + "s") % (value,)
    if verb == "d":
        return ("%" + flags + "d") % (int(value),)
    if verb in ("f", "e", "g", "x", "X", "o", "b"):
        if verb == "b":
            return format(int(value), "b")
        return ("%" + flags + verb) % (float(value) if verb in "feg" else int(value),)
    raise ValueError(f'unsupported format verb "%{verb}"')


def hcl_format(spec: str, *args: Any) -> str:
    state = {"i": 0}
    return re.sub(r"%([-+# 0-9.]*)([a-zA-Z%])", lambda m: _format_verb(m, list(args), state), spec)


def _flatten(items: list) -> list:
    out: list = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _number(value: Any) -> int | float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"cannot convert {value!r} to bool")


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        raise ValueError("cannot convert a collection to string")
    return str(value)


def _substr(text: str, offset: int, length: int) -> str:
    if offset < 0:
        offset = len(text) + offset
    return text[offset:] if length < 0 else text[offset:offset + length]


def _range(*args: Any) -> list:
    nums = [_number(a) for a in args]
    start, stop, step = (0, nums[0], 1) if len(nums) == 1 else (nums + [1])[:3] if len(nums) == 2 else nums
    out, value = [], start
    while (step > 0 and value < stop) or (step < 0 and value > stop):
        out.append(value)
        value += step
    return out


def _lookup(mapping: dict, key: str, *default: Any) -> Any:
    if key in mapping:
        return mapping[key]
    if default:
        return default[0]
    raise ValueError(f'the given key "{key}" does not exist in the map')


def _csvdecode(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _distinct(items: list) -> list:
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _regex_replace(text: str, pattern: str, replacement: str) -> str:
    return re.sub(pattern, re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", replacement), text)


def _replace(text: str, old: str, new: str) -> str:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return _regex_replace(text, old[1:-1], new)
    return text.replace(old, new)


def _uuidv5(namespace: str, name: str) -> str:
    spaces = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL,
              "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}
    space = spaces.get(namespace) or uuid.UUID(namespace)
    return str(uuid.uuid5(space, name))


_CORE: dict[str, Callable[..., Any]] = {
    # numbers
    "abs": lambda n: abs(_number(n)),
    "ceil": lambda n: math.ceil(_number(n)),
    "floor": lambda n: math.floor(_number(n)),
    "log": lambda n, base: math.log(_number(n), _number(base)),
    "max": lambda *n: max(_number(x) for x in n),
    "min": lambda *n: min(_number(x) for x in n),
    "parseint": lambda s, base: int(str(s), int(base)),
    "pow": lambda a, b: _number(a) ** _number(b),
    "signum": lambda n: (n > 0) - (n < 0),
    # strings
    "chomp": lambda s: s.rstrip("\r\n"),
    "format": hcl_format,
    "formatlist": lambda spec, *lists: [hcl_format(spec, *row) for row in zip(*lists)],
    "indent": lambda n, s: s.replace("\n", "\n" + " " * int(n)),
    "join": lambda sep, *lists: sep.join(_to_string(x) for lst in lists for x in lst),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "title": lambda s: re.sub(r"\b[a-z]", lambda m: m.group(0).upper(), s),
    "regex_replace": _regex_replace,
    "replace": _replace,
    "split": lambda sep, s: s.split(sep),
    "strlen": lambda s: len(s),
    "strrev": lambda s: s[::-1],
    "substr": lambda s, offset, length: _substr(s, int(offset), int(length)),
    "trim": lambda s, chars: s.strip(chars),
    "trimprefix": lambda s, p: s[len(p):] if p and s.startswith(p) else s,
    "trimsuffix": lambda s, p: s[:-len(p)] if p and s.endswith(p) else s,
    "trimspace": lambda s: s.strip(),
    # collections
    "chunklist": lambda lst, size: [lst[i:i + int(size)] for i in range(0, len(lst), int(size))],
    "coalesce": lambda *xs: next(x for x in xs if x not in (None, "")),
    "coalescelist": lambda *ls: next(lst for lst in ls if lst),
    "compact": lambda lst: [x for x in lst if x not in (None, "")],
    "concat": lambda *ls: [x for lst in ls for x in lst],
    "contains": lambda lst, v: v in lst,
    "distinct": _distinct,
    "element": lambda lst, i: lst[int(i) % len(lst)],
    "flatten": _flatten,
    "index": lambda lst, v: lst.index(v),
    "keys": lambda m: sorted(m),
    "length": lambda x: len(x),
    "lookup": _lookup,
    "merge": lambda *ms: {k: v for m in ms for k, v in m.items()},
    "range": _range,
    "reverse": lambda lst: list(reversed(lst)),
    "setintersection": lambda first, *rest: [x for x in _distinct(first) if all(x in r for r in rest)],
    "setunion": lambda *ls: _distinct([x for lst in ls for x in lst]),
    "slice": lambda lst, a, b: lst[int(a):int(b)],
    "sort": lambda lst: sorted(_to_string(x) for x in lst),
    "values": lambda m: [m[k] for k in sorted(m)],
    "zipmap": lambda ks, vs: dict(zip(ks, vs)),
    # encoding and hashing
    "base64decode": lambda s: base64.b64decode(s).decode(),
    "base64encode": lambda s: base64.b64encode(s.encode()).decode(),
    "csvdecode": _csvdecode,
    "jsondecode": lambda s: json.loads(s),
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "urlencode": lambda s: urllib.parse.quote(s, safe=""),
    "sha256": lambda s: hashlib.sha256(s.encode()).hexdigest(),
    "sha512": lambda s: hashlib.sha512(s.encode()).hexdigest(),
    "uuidv4": lambda: str(uuid.uuid4()),
    "uuidv5": _uuidv5,
    # conversion
    "tostring": _to_string,
    "tonumber": _number,
    "tobool": _to_bool,
    "tolist": list,
    "toset": _distinct,
    "tomap": dict,
}


def _filesystem_functions(base_dir: str) -> dict[str, Callable[..., Any]]:
    def resolve(path: str) -> str:
        return os.path.join(base_dir, os.path.expanduser(path))

    def read(path: str) -> str:
        with open(resolve(path), encoding="utf-8") as handle:
            return handle.read()

    def read_base64(path: str) -> str:
        with open(resolve(path), "rb") as handle:
            return base64.b64encode(handle.read()).decode()

    return {
        "file": read,
        "filebase64": read_base64,
        "fileexists": lambda p: os.path.isfile(resolve(p)),
        "abspath": lambda p: os.path.abspath(resolve(p)),
        "basename": os.path.basename,
        "dirname": os.path.dirname,
        "pathexpand": os.path.expanduser,
    }


def function_table(allow_fs: bool, base_dir: str = ".") -> dict[str, Callable[..., Any]]:
    table = dict(_CORE)
    table.update(MORE_FUNCTIONS)
    if allow_fs:
        table.update(_filesystem_functions(base_dir))
        table["fileset"] = fileset_function(base_dir)
    return table
