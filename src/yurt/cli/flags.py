"""Go `flag`-package parsing: flags first, then positional arguments.

`-name value`, `-name=value`, `--name` all work; a bool flag takes no separate value
(`-detach`, `-detach=false`); parsing stops at the first non-flag argument or at `--`.
Every command's flag set also holds the global client flags (`-address -region
-namespace -token` and the TLS ones, accepted and ignored where yurt has no TLS yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class FlagError(Exception):
    """A parse problem, worded as Go's flag package words it."""


class HelpRequested(Exception):
    """`-h` / `-help` was given."""


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


@dataclass
class _Flag:
    name: str
    kind: str  # bool | string | int | list | optbool
    default: Any


@dataclass
class FlagSet:
    """Declare flags, then `parse(args)`; values are in `.values`, positionals returned."""

    name: str
    flags: dict[str, _Flag] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def bool(self, name: str, default: bool = False) -> "FlagSet":
        return self._add(name, "bool", default)

    def optbool(self, name: str) -> "FlagSet":
        """A bool that records whether it was set (None when absent)."""
        return self._add(name, "optbool", None)

    def string(self, name: str, default: str = "") -> "FlagSet":
        return self._add(name, "string", default)

    def int(self, name: str, default: int = 0) -> "FlagSet":
        return self._add(name, "int", default)

    def list(self, name: str) -> "FlagSet":
        """A repeatable string flag (`-var a=1 -var b=2`)."""
        return self._add(name, "list", None)

    def _add(self, name: str, kind: str, default: Any) -> "FlagSet":
        self.flags[name] = _Flag(name, kind, default)
        self.values[name] = [] if kind == "list" else default
        return self

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def parse(self, args: list[str]) -> list[str]:
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                return list(args[i + 1 :])
            if len(arg) < 2 or not arg.startswith("-"):
                return list(args[i:])
            i = self._parse_one(args, i)
        return []

    def _parse_one(self, args: list[str], i: int) -> int:
        arg = args[i]
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith("-") or body.startswith("="):
            raise FlagError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        if name in ("h", "help") and name not in self.flags:
            raise HelpRequested()
        flag = self.flags.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind in ("bool", "optbool"):
            self._set(flag, value if has_value else "true")
            return i + 1
        if not has_value:
            if i + 1 >= len(args):
                raise FlagError(f"flag needs an argument: -{name}")
            value = args[i + 1]
            i += 1
        self._set(flag, value)
        return i + 1

    def _set(self, flag: _Flag, value: str) -> None:
        try:
            if flag.kind in ("bool", "optbool"):
                converted: Any = parse_bool(value)
            elif flag.kind == "int":
                converted = int(value, 0)
            elif flag.kind == "list":
                converted = [*self.values[flag.name], value]
            else:
                converted = value
        except ValueError:
            reason = "parse error"
            raise FlagError(f'invalid value "{value}" for flag -{flag.name}: {reason}') from None
        self.values[flag.name] = converted
        self.seen.add(flag.name)


CLIENT_FLAGS = ("address", "region", "namespace", "token")
TLS_FLAGS = ("ca-cert", "ca-path", "client-cert", "client-key", "tls-server-name")


def client_flag_set(name: str) -> FlagSet:
    """A flag set with Nomad's global client flags already declared."""
    fs = FlagSet(name)
    for flag in (*CLIENT_FLAGS, *TLS_FLAGS):
        fs.string(flag)
    for flag in ("no-color", "force-color", "insecure", "tls-skip-verify"):
        fs.bool(flag)
    return fs
