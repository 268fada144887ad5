"""Go's time.Format layouts ("2006-01-02T15:04:05Z07:00") for Python datetimes."""

import re
from datetime import datetime

_TOKEN = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|Z07:00:00|-07:00:00|Z07:00|-07:00|Z0700|-0700|Z07|-07|"
    r"__2|002|_2|15|06|01|02|03|04|05|PM|pm|[.,](?:0+|9+)(?![0-9])|1|2|3|4|5"
)


def _zone(dt: datetime, token: str) -> str:
    offset = dt.utcoffset()
    seconds = int(offset.total_seconds()) if offset is not None else 0
    if token.startswith("Z") and seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hh, mm, ss = seconds // 3600, seconds % 3600 // 60, seconds % 60
    body = token.lstrip("Z-")
    if body == "07":
        return f"{sign}{hh:02d}"
    if body == "0700":
        return f"{sign}{hh:02d}{mm:02d}"
    if body == "07:00":
        return f"{sign}{hh:02d}:{mm:02d}"
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}"


def _fraction(dt: datetime, token: str) -> str:
    digits = f"{dt.microsecond:06d}000"[: len(token) - 1]
    if token[1] == "9":
        digits = digits.rstrip("0")
        return token[0] + digits if digits else ""
    return token[0] + digits


def _one(dt: datetime, token: str) -> str:
    hour12 = dt.hour % 12 or 12
    simple = {
        "January": dt.strftime("%B"), "Jan": dt.strftime("%b"), "Monday": dt.strftime("%A"), "Mon": dt.strftime("%a"),
        "MST": dt.tzname() or "UTC", "2006": f"{dt.year:04d}", "06": f"{dt.year % 100:02d}",
        "01": f"{dt.month:02d}", "1": str(dt.month), "02": f"{dt.day:02d}", "2": str(dt.day),
        "_2": f"{dt.day:>2d}", "__2": f"{dt.timetuple().tm_yday:>3d}", "002": f"{dt.timetuple().tm_yday:03d}",
        "15": f"{dt.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12), "04": f"{dt.minute:02d}",
        "4": str(dt.minute), "05": f"{dt.second:02d}", "5": str(dt.second),
        "PM": "PM" if dt.hour >= 12 else "AM", "pm": "pm" if dt.hour >= 12 else "am",
    }
    if token in simple:
        return simple[token]
    if token[0] in ".,":
        return _fraction(dt, token)
    return _zone(dt, token)


def go_format(dt: datetime, layout: str) -> str:
    return _TOKEN.sub(lambda m: _one(dt, m.group()), layout)
