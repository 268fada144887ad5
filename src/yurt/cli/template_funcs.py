"""Go's value printing, truth and built-in template functions (plus a few sprig ones)."""

import json
import math
import re
from typing import Any


def _go_float(value: float) -> str:
    """Go's `%v` for float64 (strconv 'g' with the shortest repr, exponent at >= 1e21)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mantissa}e{sign}{abs(int(exp)):02d}"
    return text


def go_print(value: Any, top: bool = True) -> str:
    """How `{{.}}` prints a value: `<no value>`, `true`, `map[a:1 b:2]`, `[x y]`."""
    if value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_print(value[k], False)}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_print(v, False) for v in value) + "]"
    return str(value)


def truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    if verb in ("v", "s"):
        text = go_print(arg, False) if verb == "v" or not isinstance(arg, str) else arg
        if prec is not None and verb == "s":
            text = text[: int(prec)]
    elif verb == "q":
        text = json.dumps(arg if isinstance(arg, str) else go_print(arg, False), ensure_ascii=False)
    elif verb == "t":
        text = go_print(arg, False)
    elif verb in "dxXobc":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            return f"%!{verb}({_go_typename(arg)}={go_print(arg, False)})"
        number = int(arg)
        spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}.get(verb)
        text = chr(number) if verb == "c" else format(number, spec)
        if "+" in flags and number >= 0 and verb == "d":
            text = "+" + text
    elif verb in "feEgG":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            return f"%!{verb}({_go_typename(arg)}={go_print(arg, False)})"
        digits = int(prec) if prec is not None else (6 if verb in "feE" else -1)
        text = _go_g(float(arg), digits, verb) if verb in "gG" else format(float(arg), f".{digits}{verb}")
    else:
        return f"%!{verb}({go_print(arg, False)})"
    if width and width != "*":
        size = int(width)
        if "-" in flags:
            text = text.ljust(size)
        elif "0" in flags and verb in "dfxX":
            text = text.rjust(size, "0")
        else:
            text = text.rjust(size)
    return text


def _go_g(value: float, digits: int, verb: str) -> str:
    if digits < 0:
        return _go_float(value)
    text = format(value, f".{digits}{'g' if verb == 'g' else 'G'}")
    return re.sub(r"e([-+])(\d)$", r"e\g<1>0\2", text)


def _go_typename(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string"}.get(type(value), "interface {}")


def printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    pos = 0
    index = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos : match.start()])
        pos = match.end()
        flags, width, prec, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, args[index]))
        index += 1
    out.append(fmt[pos:])
    if index < len(args):
        extra = ", ".join(f"{_go_typename(a)}={go_print(a, False)}" for a in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def go_sprint(*args: Any) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(arg, False)
    return out


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise ValueError(f"len of type {_go_typename(value)}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise IndexError(f"index out of range: {key}")
            value = value[key]
        elif value is None:
            return None
        else:
            raise ValueError(f"can't index item of type {_go_typename(value)}")
    return value


def _slice(value: Any, *bounds: int) -> Any:
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(value)
    return value[start:end]


def _and(*args: Any) -> Any:
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


def _eq(first: Any, *others: Any) -> bool:
    return any(first == other for other in others)


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _join(sep_or_list: Any, list_or_sep: Any) -> str:
    # Go's `join` is (list, sep) in sprig; accept both orders.
    if isinstance(sep_or_list, str):
        sep, items = sep_or_list, list_or_sep
    else:
        items, sep = sep_or_list, list_or_sep
    return sep.join(go_print(i, False) for i in items or [])


def _default(fallback: Any, value: Any = None) -> Any:
    return value if truth(value) else fallback


FUNCS = {
    "and": _and,
    "or": _or,
    "not": lambda v: not truth(v),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "eq": _eq,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "print": go_sprint,
    "printf": printf,
    "println": lambda *a: " ".join(go_print(x, False) for x in a) + "\n",
    "json": _to_json,
    "toJson": _to_json,
    "sprig_toJson": _to_json,
    "sprig_toPrettyJson": lambda v: json.dumps(v, indent=2, ensure_ascii=False),
    "sprig_upper": lambda s: s.upper(),
    "sprig_lower": lambda s: s.lower(),
    "sprig_trim": lambda s: s.strip(),
    "sprig_join": _join,
    "join": _join,
    "sprig_default": _default,
    "sprig_contains": lambda sub, s: sub in s,
}
