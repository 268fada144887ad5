"""The rest of the jobspec function library: CIDR math, time, YAML, set products,
`convert`, `fileset`, and the crypto functions (when their libraries are installed)."""

from __future__ import annotations

import glob
import ipaddress
import itertools
import json
import os
import re
from datetime import datetime, timedelta
from typing import Any, Callable

from yurt.structs.durations import parse_duration


# -- CIDR -------------------------------------------------------------------------------
def cidrhost(prefix: str, hostnum: int) -> str:
    network = ipaddress.ip_network(prefix, strict=False)
    number = int(hostnum)
    if number < 0:
        number += network.num_addresses
    if not 0 <= number < network.num_addresses:
        raise ValueError(f"prefix {prefix} has no host number {hostnum}")
    return str(network.network_address + number)


def cidrnetmask(prefix: str) -> str:
    network = ipaddress.ip_network(prefix, strict=False)
    if network.version != 4:
        raise ValueError("only IPv4 networks have a netmask")
    return str(network.netmask)


def cidrsubnet(prefix: str, newbits: int, netnum: int) -> str:
    network = ipaddress.ip_network(prefix, strict=False)
    new_prefix = network.prefixlen + int(newbits)
    if new_prefix > network.max_prefixlen:
        raise ValueError(f"insufficient address space to extend prefix of {network.prefixlen} by {newbits}")
    size = 1 << (network.max_prefixlen - new_prefix)
    if not 0 <= int(netnum) < (1 << int(newbits)):
        raise ValueError(f"prefix extension of {newbits} does not accommodate a subnet numbered {netnum}")
    address = network.network_address + int(netnum) * size
    return str(ipaddress.ip_network(f"{address}/{new_prefix}"))


def cidrsubnets(prefix: str, *newbits: int) -> list[str]:
    network = ipaddress.ip_network(prefix, strict=False)
    out, cursor = [], int(network.network_address)
    for bits in newbits:
        length = network.prefixlen + int(bits)
        size = 1 << (network.max_prefixlen - length)
        cursor = (cursor + size - 1) // size * size  # align to the subnet size
        subnet = ipaddress.ip_network(f"{ipaddress.ip_address(cursor)}/{length}")
        if not subnet.subnet_of(network):
            raise ValueError(f"not enough remaining address space for a subnet with a prefix of {length} bits")
        out.append(str(subnet))
        cursor += size
    return out


# -- time -------------------------------------------------------------------------------
def _parse_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f'"{text}" is not an RFC 3339 timestamp (it has no time zone)')
    return value


_FORMAT_TOKENS = re.compile(r"'[^']*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|mm|m|ss|s|aa|AA|ZZZZZ|ZZZZ|ZZZ|Z")


def formatdate(spec: str, timestamp: str) -> str:
    t = _parse_timestamp(timestamp)
    offset = t.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    table = {
        "YYYY": f"{t.year:04d}", "YY": f"{t.year % 100:02d}", "MMMM": t.strftime("%B"),
        "MMM": t.strftime("%b"), "MM": f"{t.month:02d}", "M": str(t.month), "DD": f"{t.day:02d}",
        "D": str(t.day), "EEEE": t.strftime("%A"), "EEE": t.strftime("%a"), "hh": f"{t.hour:02d}",
        "h": str(t.hour), "HH": f"{(t.hour % 12) or 12:02d}", "H": str((t.hour % 12) or 12),
        "mm": f"{t.minute:02d}", "m": str(t.minute), "ss": f"{t.second:02d}", "s": str(t.second),
        "aa": "am" if t.hour < 12 else "pm", "AA": "AM" if t.hour < 12 else "PM",
        "ZZZZZ": zone[:3] + ":" + zone[3:], "ZZZZ": zone, "ZZZ": "UTC" if minutes == 0 else zone,
        "Z": "Z" if minutes == 0 else zone[:3] + ":" + zone[3:],
    }

    def replace(match: re.Match) -> str:
        token = match.group(0)
        return token[1:-1] if token.startswith("'") else table[token]

    return _FORMAT_TOKENS.sub(replace, spec)


def timeadd(timestamp: str, duration: str) -> str:
    t = _parse_timestamp(timestamp) + timedelta(microseconds=parse_duration(duration) / 1000)
    text = t.isoformat()
    return text.replace("+00:00", "Z")


# -- YAML (the block-style subset HCL's yamlencode writes and common files use) ----------
def yamlencode(value: Any) -> str:
    return "".join(_yaml_lines(value, 0)) if isinstance(value, (dict, list)) and value else _yaml_scalar(value) + "\n"


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value))  # strings are always quoted, as go-cty-yaml writes them


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_yaml_scalar(str(key))}:\n")
                lines += _yaml_lines(item, indent + (2 if isinstance(item, dict) else 0))
            else:
                lines.append(f"{pad}{_yaml_scalar(str(key))}: {_yaml_scalar(item)}\n")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = _yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines += nested[1:]
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}\n")
    return lines


def yamldecode(text: str) -> Any:
    lines = [(len(l) - len(l.lstrip(" ")), l.strip()) for l in text.splitlines()
             if l.strip() and not l.strip().startswith("#") and l.strip() != "---"]
    if not lines:
        return None
    value, index = _yaml_block(lines, 0, lines[0][0])
    if index != len(lines):
        raise ValueError(f"unexpected YAML content: {lines[index][1]!r}")
    return value


def _yaml_block(lines: list, index: int, indent: int) -> tuple[Any, int]:
    if lines[index][1].startswith("- ") or lines[index][1] == "-":
        out: list = []
        while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("-"):
            rest = lines[index][1][1:].strip()
            if not rest:
                item, index = _yaml_block(lines, index + 1, lines[index + 1][0])
            elif _yaml_key(rest) is not None:  # "- key: value" starts a map
                lines[index] = (indent + 2, rest)
                item, index = _yaml_block(lines, index, indent + 2)
            else:
                item, index = _yaml_value(rest), index + 1
            out.append(item)
        return out, index
    if _yaml_key(lines[index][1]) is None:
        return _yaml_value(lines[index][1]), index + 1
    mapping: dict = {}
    while index < len(lines) and lines[index][0] == indent:
        key, rest = _yaml_key(lines[index][1])
        index += 1
        if rest:
            mapping[key] = _yaml_value(rest)
        elif index < len(lines) and (lines[index][0] > indent or lines[index][1].startswith("-")):
            mapping[key], index = _yaml_block(lines, index, lines[index][0])
        else:
            mapping[key] = None
    return mapping, index


def _yaml_key(text: str) -> tuple[str, str] | None:
    match = re.match(r'^("(?:[^"\\]|\\.)*"|\'[^\']*\'|[^:#\s][^:#]*?)\s*:(?:\s+(.*)|$)', text)
    if match is None:
        return None
    key = match.group(1)
    return (_yaml_value(key) if key[0] in "'\"" else key), (match.group(2) or "").strip()


def _yaml_value(text: str) -> Any:
    text = re.sub(r"\s+#.*$", "", text) if not text.startswith(('"', "'")) else text
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith(("[", "{")):
        return json.loads(re.sub(r"([{,]\s*)([A-Za-z_][\w-]*)\s*:", r'\1"\2":', text))
    if text in ("null", "~", ""):
        return None
    if text in ("true", "True", "yes"):
        return True
    if text in ("false", "False", "no"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# -- collections and types ---------------------------------------------------------------
def setproduct(*sets: list) -> list[list]:
    return [list(combo) for combo in itertools.product(*sets)]


def convert(value: Any, type_name: Any) -> Any:
    kind = str(type_name)
    if kind in ("string",):
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) \
            else ("true" if value is True else "false" if value is False else str(value))
    if kind == "number":
        return value if isinstance(value, (int, float)) else (int(value) if str(value).lstrip("-").isdigit() else float(value))
    if kind == "bool":
        return value if isinstance(value, bool) else {"true": True, "false": False}[str(value)]
    return value


def _bcrypt(text: str, cost: int = 10) -> str:
    try:
        import bcrypt  # optional
    except ImportError:
        raise ValueError("bcrypt is not available in this installation") from None
    return bcrypt.hashpw(text.encode(), bcrypt.gensalt(int(cost), prefix=b"2a")).decode()


def _rsadecrypt(ciphertext: str, private_key: str) -> str:
    try:
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError:
        raise ValueError("rsadecrypt is not available in this installation") from None
    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    return key.decrypt(base64.b64decode(ciphertext), padding.PKCS1v15()).decode()


MORE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "cidrhost": cidrhost, "cidrnetmask": cidrnetmask, "cidrsubnet": cidrsubnet,
    "cidrsubnets": cidrsubnets, "formatdate": formatdate, "timeadd": timeadd,
    "yamlencode": yamlencode, "yamldecode": yamldecode, "setproduct": setproduct,
    "convert": convert, "bcrypt": _bcrypt, "rsadecrypt": _rsadecrypt,
}


def fileset_function(base_dir: str) -> Callable[[str, str], list[str]]:
    def fileset(path: str, pattern: str) -> list[str]:
        root = os.path.join(base_dir, path)
        matches = glob.glob(os.path.join(root, pattern), recursive=True)
        return sorted(os.path.relpath(m, root) for m in matches if os.path.isfile(m))

    return fileset
