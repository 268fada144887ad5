"""Go `time.Time` text (RFC 3339 with nanoseconds) to and from unix nanoseconds."""

from datetime import UTC, datetime

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def format_rfc3339_ns(ns: int) -> str:
    """`2026-11-26T20:16:30.123456789Z`; Go's zero time for 0."""
    if not ns:
        return GO_ZERO_TIME
    seconds, frac = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def parse_rfc3339_ns(text: str | None) -> int:
    """Unix nanoseconds of a Go time string; 0 for empty, Go's zero time or junk."""
    if not text or text.startswith("0001-01-01"):
        return 0
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    frac = 0
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac = int(digits[:9].ljust(9, "0")) if digits else 0
        value = head + rest
    try:
        return int(datetime.fromisoformat(value).timestamp()) * 1_000_000_000 + frac
    except ValueError:
        return 0
