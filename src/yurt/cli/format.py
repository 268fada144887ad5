"""Output helpers shaped like Nomad's CLI: columnized tables, k = v blocks, times, JSON.

Nomad formats tables with `columnize` (cells split on `|`, trimmed, padded to the widest
cell of each column, glued with two spaces, last column unpadded). Times are ISO 8601 in
local time, or relative ("5s ago", "1h2m ago"). `-json` output uses a 4-space indent.
"""

import json
import math
from datetime import datetime, timezone
from typing import Any

from yurt.structs.durations import format_duration

SHORT_ID = 8
FULL_ID = 36


def limit(text: str, length: int) -> str:
    """The first `length` characters (Nomad's `limit`, used to shorten IDs)."""
    return text if len(text) < length else text[:length]


def _cells(line: str, empty: str) -> list[str]:
    cells = [cell.strip() for cell in line.split("|")]
    return [cell if cell or not empty else empty for cell in cells]


def columnize(lines: list[str], glue: str = "  ", empty: str = "") -> str:
    """Align `|`-separated rows into columns, as ryanuber/columnize does."""
    rows = [_cells(line, empty) for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row):
            if i >= len(widths):
                widths.append(len(cell))
            elif len(cell) > widths[i]:
                widths[i] = len(cell)
    out = []
    for row in rows:
        parts = []
        for i, cell in enumerate(row):
            if i == len(row) - 1:
                parts.append(cell)
            else:
                parts.append(cell.ljust(widths[i]) + glue)
        out.append("".join(parts))
    return "\n".join(out)


def format_list(lines: list[str]) -> str:
    """A table; blank cells become `<none>` so the output stays awk-able."""
    return columnize(lines, empty="<none>")


def format_list_with_spaces(lines: list[str]) -> str:
    return columnize(lines)


def format_kv(lines: list[str]) -> str:
    """`Key|Value` rows as aligned `Key = Value` lines."""
    return columnize(lines, glue=" = ", empty="<none>")


def _local(dt: datetime) -> str:
    return format_datetime(dt.astimezone())


def format_datetime(dt: datetime) -> str:
    """An aware datetime in its own zone, as Go's `2006-01-02T15:04:05Z07:00`."""
    offset = dt.utcoffset()
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_unix_nano(nanos: int | None) -> str:
    """ISO 8601 (`2006-01-02T15:04:05Z07:00`); empty for the zero time."""
    if not nanos or nanos < 1_000_000_000:
        return ""
    return _local(datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc))


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return ""
    return _local(datetime.fromtimestamp(seconds, tz=timezone.utc))


def parse_rfc3339(text: str | None) -> float | None:
    """Seconds since the epoch for a Go time string; None for Go's zero time or junk."""
    if not text or text.startswith("0001-01-01"):
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def format_time_string(text: str | None, zero: str = "") -> str:
    """A Go time string (JSON `time.Time`) as Nomad prints it; `zero` for the zero time."""
    seconds = parse_rfc3339(text)
    return zero if seconds is None else format_seconds(seconds)


def _go_round_seconds(seconds: float) -> int:
    return int(math.floor(seconds + 0.5)) if seconds >= 0 else -int(math.floor(-seconds + 0.5))


def pretty_time_diff(first_seconds: float | None, now_seconds: float) -> str:
    """Nomad's `prettyTimeDiff`: the two largest periods, e.g. `5s ago`, `1h2m ago`, `3d from now`."""
    if not first_seconds:
        return ""
    first = _go_round_seconds(first_seconds)
    second = _go_round_seconds(now_seconds)
    suffix = "ago" if second >= first else "from now"
    total = abs(second - first)
    parts: list[str] = []
    units = [(60, "s"), (60, "m"), (24, "h"), (30, "d"), (12, "mo")]
    remaining = total
    for size, name in units:
        value = remaining % size
        if value:
            parts.append(f"{value}{name}")
        remaining //= size
        if not remaining:
            break
    if remaining:
        parts.append(f"{remaining}y")
    if not parts:
        return "0s " + suffix
    return "".join(reversed(parts[-2:])) + " " + suffix


def pretty_nano_diff(nanos: int | None, now_seconds: float) -> str:
    return pretty_time_diff(nanos / 1e9 if nanos else None, now_seconds)


_IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]


def ibytes(size: int) -> str:
    """go-humanize `IBytes`: `300 MiB`, `1.5 GiB`, `9 B`."""
    if size < 10:
        return f"{size} B"
    exp = int(math.floor(math.log(size) / math.log(1024)))
    exp = min(exp, len(_IEC) - 1)
    value = math.floor(size / 1024**exp * 10 + 0.5) / 10
    return f"{value:.1f} {_IEC[exp]}" if value < 10 else f"{value:.0f} {_IEC[exp]}"


def go_duration(nanos: int) -> str:
    """Go's `time.Duration.String()`: `1h2m3s`, `1.5s`, `300ms`, `0s`."""
    return format_duration(nanos)


def to_json(data: Any) -> str:
    """Nomad's `-json` output: 4-space indent, keys in the server's order."""
    return json.dumps(data, indent=4, ensure_ascii=False)


class FormatError(Exception):
    """A `-json`/`-t` problem, printed as is."""


def format_output(as_json: bool, template: str, data: Any) -> str:
    """Nomad's `Format(json, template, data)`."""
    from .gotemplate import TemplateError, render

    if as_json and template:
        raise FormatError("Both json and template formatting are not allowed")
    if as_json:
        return to_json(data)
    if not template:
        raise FormatError("no formatting option given")
    try:
        return render(template, data)
    except TemplateError as exc:
        raise FormatError(f"Error formatting the data: {exc}") from exc


def q(text: Any) -> str:
    """Go's `%q` for a string."""
    return json.dumps(str(text), ensure_ascii=False)


def next_launch_text(periodic: dict | None, now: float) -> str:
    """`<time> (<duration> from now)` for a periodic job's next launch; empty if unknown."""
    from .cron_next import next_launch

    nxt = next_launch(periodic or {}, now)
    if nxt is None:
        return ""
    delta = int(nxt.timestamp()) - int(now)
    return f"{format_datetime(nxt)} ({go_duration(delta * 1_000_000_000)} from now)"
