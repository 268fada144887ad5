"""Go's view of template values: printing (`fmt`'s %v), truth, type names, printf, JSON.

Values are Python builtins: None (nil), bool, int, float, str, list, dict.
"""

import json
import math
import re
from typing import Any


def go_float(value: float, fmt: str = "g") -> str:
    """Go's %v for float64 (strconv 'g', shortest repr, exponent when < 1e-4 or >= 1e21)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value)) if value or math.copysign(1, value) > 0 else "-0"
    text = repr(value)
    if "e" not in text and (abs(value) >= 1e21 or abs(value) < 1e-4):
        text = f"{value:e}"
        mantissa, exp = text.split("e")
        text = repr(float(mantissa)).rstrip("0").rstrip(".") + "e" + exp
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        mantissa = mantissa[:-2] if mantissa.endswith(".0") else mantissa
        return f"{mantissa}e{sign}{abs(int(exp)):02d}"
    return text


def go_type(value: Any) -> str:
    """Go's name of a value's dynamic type, as data from JSON would have it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value):
            return "[]string"
        return "[]interface {}"
    return type(value).__name__


def go_print(value: Any, top: bool = True) -> str:
    """How `{{.}}` prints a value: `<no value>`, `true`, `map[a:1 b:2]`, `[x y]`."""
    if value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, dict):
        inner = " ".join(f"{go_print(k, False)}:{go_print(value[k], False)}" for k in sorted(value, key=_sort_key))
        return f"map[{inner}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_print(v, False) for v in value) + "]"
    return str(value)


def _sort_key(key: Any) -> tuple:
    return (0, key, "") if isinstance(key, (int, float)) and not isinstance(key, bool) else (1, 0, str(key))


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings/collections are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


# --- fmt.Sprintf -------------------------------------------------------------------------

_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?([a-zA-Z%])")


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={go_print(arg, False)})"


def _is_number(arg: Any) -> bool:
    return isinstance(arg, (int, float)) and not isinstance(arg, bool)


def _format_int(flags: str, prec: str | None, verb: str, arg: int) -> str:
    if verb == "c":
        return chr(arg)
    if verb == "q":
        return "'" + json.dumps(chr(arg), ensure_ascii=False)[1:-1].replace("'", "\\'") + "'"
    if verb == "U":
        return f"U+{arg:04X}"
    text = format(abs(arg), {"d": "d", "x": "x", "X": "X", "o": "o", "O": "o", "b": "b"}[verb])
    if prec:
        text = text.rjust(int(prec), "0")
    if "#" in flags and verb in "xX":
        text = ("0x" if verb == "x" else "0X") + text
    elif ("#" in flags and verb == "o") or verb == "O":
        text = ("0o" if verb == "O" else "0") + text
    sign = "-" if arg < 0 else "+" if "+" in flags else " " if " " in flags else ""
    return sign + text


def _format_float(flags: str, prec: str | None, verb: str, arg: float) -> str:
    if verb in "gG" and not prec:
        text = go_float(arg)
        text = text.upper() if verb == "G" else text
    elif verb in "gG":
        text = format(arg, f".{prec}{verb}")
        text = re.sub(r"e([-+])(\d)$", r"e\g<1>0\2", text)
    else:
        text = format(arg, f".{prec if prec else ('0' if prec == '' else '6')}{verb}")
        text = re.sub(r"([eE][-+])(\d)$", r"\g<1>0\2", text)
    if "+" in flags and arg >= 0:
        text = "+" + text
    return text


def _format_one(flags: str, prec: str | None, verb: str, arg: Any) -> str:
    if verb == "T":
        return go_type(arg)
    if verb in ("v", "s") and (verb == "v" or isinstance(arg, (str, list, tuple, dict))):
        if isinstance(arg, float) and verb == "v":
            return _format_float(flags, None, "g", arg)
        text = go_print(arg, False)
        return text[: int(prec)] if prec and isinstance(arg, str) else text
    if verb == "q" and isinstance(arg, str):
        return "`" + arg + "`" if "#" in flags and "`" not in arg else json.dumps(arg, ensure_ascii=False)
    if verb == "t" and isinstance(arg, bool):
        return go_print(arg)
    if verb in "xX" and isinstance(arg, str):
        text = arg.encode().hex()
        return text.upper() if verb == "X" else text
    if verb in "dxXoObcqU" and isinstance(arg, int) and not isinstance(arg, bool):
        return _format_int(flags, prec, verb, arg)
    if verb in "feEgGF" and _is_number(arg):
        return _format_float(flags, prec, verb.lower() if verb == "F" else verb, float(arg))
    return _bad(verb, arg)


def _pad(text: str, flags: str, width: str | None, verb: str, arg: Any) -> str:
    if not width or width == "*":
        return text
    size = int(width)
    if "-" in flags:
        return text.ljust(size)
    if "0" in flags and _is_number(arg) and verb not in "sqv":
        sign = text[0] if text[:1] in "+- " else ""
        return sign + text[len(sign):].rjust(size - len(sign), "0")
    return text.rjust(size)


def printf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use (%v %s %q %d %x %f %g %t %T ...)."""
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
        arg = args[index]
        index += 1
        out.append(_pad(_format_one(flags, prec, verb, arg), flags, width, verb, arg))
    out.append(fmt[pos:])
    if index < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={go_print(a, False)}" for a in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(arg, False)
    return out


def sprintln(*args: Any) -> str:
    return " ".join(go_print(a, False) for a in args) + "\n"


# --- encoding/json -----------------------------------------------------------------------

def _json_float(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"json: unsupported value: {go_float(value)}")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = go_float(value)
    return re.sub(r"e([-+])0(\d)$", r"e\g<1>\2", text)


def _json_encode(value: Any, indent: int | None, level: int) -> str:
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
        parts = [json.dumps(k, ensure_ascii=False) + (": " if indent else ":") + _json_encode(v, indent, level + 1)
                 for k, v in sorted(items)]
        return _json_join(parts, "{", "}", indent, level)
    if isinstance(value, (list, tuple)):
        return _json_join([_json_encode(v, indent, level + 1) for v in value], "[", "]", indent, level)
    raise ValueError(f"json: unsupported type: {go_type(value)}")


def _json_join(parts: list[str], open_: str, close: str, indent: int | None, level: int) -> str:
    if not parts:
        return open_ + close
    if not indent:
        return open_ + ",".join(parts) + close
    inner = "\n" + " " * (indent * (level + 1))
    return open_ + inner + ("," + inner).join(parts) + "\n" + " " * (indent * level) + close


def go_json(value: Any, indent: int | None = None, escape_html: bool = True) -> str:
    """encoding/json Marshal (or MarshalIndent with `indent` spaces): sorted keys, HTML-safe."""
    text = _json_encode(value, indent, 0)
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
