"""The extra functions Nomad's CLI gives `-t` templates (beyond Go's builtins)."""

import json
from typing import Any

from yurt.gotemplate import go_print, truth


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _join(sep_or_list: Any, list_or_sep: Any) -> str:
    # sprig's `join` is (sep, list); accept both orders.
    if isinstance(sep_or_list, str):
        sep, items = sep_or_list, list_or_sep
    else:
        items, sep = sep_or_list, list_or_sep
    return sep.join(go_print(i, False) for i in items or [])


def _default(fallback: Any, value: Any = None) -> Any:
    return value if truth(value) else fallback


CLI_FUNCS = {
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
