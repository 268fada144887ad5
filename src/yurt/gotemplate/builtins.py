"""The functions every Go template has (text/template's builtins), with Go's errors."""

import urllib.parse
from typing import Any

from .values import go_type, printf, sprint, sprintln, truth

_BASIC = {bool: "bool", int: "int", float: "float", str: "string"}


class FuncError(Exception):
    """An error returned by a template function (shown as `error calling NAME: ...`)."""


def wants_executor(fn):
    """Mark a template function that is called with the running executor as its first argument."""
    fn.wants_executor = True
    return fn


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    return _BASIC.get(type(value), "other")


def eq(arg1: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    k1 = _kind(arg1)
    for arg in others:
        k2 = _kind(arg)
        if k1 != k2:
            if k1 != "nil" and k2 != "nil":
                raise FuncError("incompatible types for comparison")
            continue
        if k1 == "other" and not isinstance(arg1, tuple):
            raise FuncError(f"non-comparable type {go_type(arg1)}")
        if arg1 == arg:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _kind(arg1), _kind(arg2)
    if k1 not in ("int", "float", "string") or k2 not in ("int", "float", "string"):
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    return arg1 < arg2


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


def length(item: Any) -> int:
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, (str, list, tuple, dict)):
        return len(item.encode() if isinstance(item, str) else item)
    raise FuncError(f"len of type {go_type(item)}")


def _index_value(item: Any, key: Any, cap: int) -> int:
    if not isinstance(key, int) or isinstance(key, bool):
        raise FuncError(f"cannot index slice/array with type {go_type(key)}")
    if key < 0 or key >= cap:
        raise FuncError(f"index out of range: {key}")
    return key


def index(item: Any, *keys: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise FuncError(f"value has type {go_type(key)}; should be string")
            item = item.get(key)
        elif isinstance(item, (list, tuple)):
            item = item[_index_value(item, key, len(item))]
        elif isinstance(item, str):
            data = item.encode()
            item = data[_index_value(item, key, len(data))]
        elif item is None:
            raise FuncError("index of nil pointer")
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def slice_(item: Any, *bounds: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if not isinstance(item, (str, list, tuple)):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(bounds) > 3 or (len(bounds) == 3 and isinstance(item, str)):
        raise FuncError(f"too many slice indexes: {len(bounds)}")
    cap = len(item)
    idx = [0, cap]
    for i, bound in enumerate(bounds[:2]):
        if not isinstance(bound, int) or isinstance(bound, bool):
            raise FuncError(f"cannot index slice/array with type {go_type(bound)}")
        if bound < 0 or bound > cap:
            raise FuncError(f"index out of range: {bound}")
        idx[i] = bound
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    return item[idx[0] : idx[1]]


def not_(arg: Any) -> bool:
    return not truth(arg)


def html(*args: Any) -> str:
    text = sprint(*args)
    for old, new in (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("\0", "\uFFFD")):
        text = text.replace(old, new)
    return text


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D",
       "`": "\\u0060", "+": "\\u002B"}


def js(*args: Any) -> str:
    out = []
    for ch in sprint(*args):
        if ch in _JS:
            out.append(_JS[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(sprint(*args), safe="-_.~")


def call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*args)


def _logic(*args: Any) -> Any:
    raise AssertionError("and/or are evaluated by the executor")  # short-circuit: see executor


BUILTINS = {
    "and": _logic,
    "or": _logic,
    "not": not_,
    "len": length,
    "index": index,
    "slice": slice_,
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "print": sprint,
    "printf": printf,
    "println": sprintln,
    "html": html,
    "js": js,
    "urlquery": urlquery,
    "call": call,
}
