"""Cron specs as Nomad reads them (gorhill/cronexpr) and the next launch of a periodic job.

5 fields (minute hour dom month dow), 6 fields (+ year), 7 fields (second first, + year),
`*`, `?`, lists, ranges, steps, month and weekday names, the `@hourly @daily @midnight
@weekly @monthly @yearly @annually` macros, and cronexpr's day forms: day of month `L` (last
day), `LW` (last weekday), `15W` (weekday nearest the 15th, within the month); day of week
`5L` (last Friday of the month), `1#2` (second Monday). A spec it cannot read makes `CronSpec`
raise ValueError and `next_launch_after` return None. Pure: the time is passed in.
"""

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


def _value(text: str, names: dict[str, int]) -> int:
    return names[text.lower()] if text.lower() in names else int(text)


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> tuple[set[int], bool]:
    """(allowed values, restricted?) for one cron field."""
    names = names or {}
    if text in ("*", "?"):
        return set(range(low, high + 1)), False
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(body, names)
            end = high if step_text else start
        if start < low or end > high or step < 1:
            raise ValueError(f"value out of range in {text!r}")
        values.update(range(start, end + 1, step))
    return values, True


_DOM_SPECIAL = re.compile(r"L|LW|(\d{1,2})W")
_DOW_SPECIAL = re.compile(r"([0-7])L|([0-7])#([1-5])")


def _split_special(text: str, pattern: re.Pattern) -> tuple[str, list[re.Match]]:
    """(the plain parts of a list field, the special day forms in it)."""
    plain, special = [], []
    for part in text.split(","):
        match = pattern.fullmatch(part.upper())
        if match:
            special.append(match)
        else:
            plain.append(part)
    return ",".join(plain), special


def _last_day(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _weekday_near(day: date, n: int) -> int | None:
    """The weekday (Mon-Fri) nearest day `n` of `day`'s month, not leaving the month."""
    last = _last_day(day)
    if n > last:
        return None
    wd = date(day.year, day.month, n).weekday()  # Monday = 0
    if wd == 5:
        return n - 1 if n > 1 else n + 2
    if wd == 6:
        return n + 1 if n < last else n - 2
    return n


def _dom_special(match: re.Match, day: date) -> bool:
    last = _last_day(day)
    if match.group(0) == "L":
        return day.day == last
    if match.group(0) == "LW":
        wd = date(day.year, day.month, last).weekday()
        return day.day == last - max(0, wd - 4)
    return day.day == _weekday_near(day, int(match.group(1)))


def _dow_special(match: re.Match, day: date) -> bool:
    weekday = int(match.group(1) or match.group(2)) % 7
    if day.isoweekday() % 7 != weekday:
        return False
    if match.group(1) is not None:  # nL: the last such weekday of the month
        return day.day + 7 > _last_day(day)
    return (day.day - 1) // 7 + 1 == int(match.group(3))


class CronSpec:
    def __init__(self, spec: str):
        text = _MACROS.get(spec.strip(), spec.strip())
        fields = text.split()
        if len(fields) == 5:
            fields = ["0", *fields, "*"]
        elif len(fields) == 6:
            fields = ["0", *fields]
        elif len(fields) != 7:
            raise ValueError(f"cron spec {spec!r} must have 5, 6 or 7 fields")
        self.seconds, _ = _field(fields[0], 0, 59)
        self.minutes, _ = _field(fields[1], 0, 59)
        self.hours, _ = _field(fields[2], 0, 23)
        dom, self.dom_special = _split_special(fields[3], _DOM_SPECIAL)
        self.days, self.days_restricted = _field(dom, 1, 31) if dom else (set(), True)
        self.months, _ = _field(fields[4], 1, 12, _MONTHS)
        dow, self.dow_special = _split_special(fields[5], _DOW_SPECIAL)
        weekdays, self.weekdays_restricted = _field(dow, 0, 7, _DAYS) if dow else (set(), True)
        self.weekdays = {d % 7 for d in weekdays}
        self.years, _ = _field(fields[6], 1970, 2099)

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        dom = day.day in self.days or any(_dom_special(m, day) for m in self.dom_special)
        dow = (day.isoweekday() % 7) in self.weekdays or any(_dow_special(m, day) for m in self.dow_special)
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, now: datetime) -> datetime | None:
        """The first matching time strictly after `now` (an aware datetime), within 5 years."""
        hours, minutes, seconds = sorted(self.hours), sorted(self.minutes), sorted(self.seconds)
        for offset in range(366 * 5):
            day = now.date() + timedelta(days=offset)
            if not self.day_matches(day):
                continue
            today = offset == 0
            for hour in hours:
                if today and hour < now.hour:
                    continue
                this_hour = today and hour == now.hour
                for minute in minutes:
                    if this_hour and minute < now.minute:
                        continue
                    for second in seconds:
                        candidate = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=now.tzinfo)
                        if candidate > now:
                            return candidate
        return None


def next_launch_after(spec: str, specs: list[str] | None, time_zone: str, after: float) -> datetime | None:
    """Nomad's PeriodicConfig.Next: the first launch strictly after `after` (unix seconds), in
    the job's time zone; `spec` alone when set, else the earliest of `specs`. None when no
    launch is due or a spec is not understood."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    now = datetime.fromtimestamp(after, tz=zone)
    found = []
    for text in ([spec] if spec else list(specs or ())):
        try:
            nxt = CronSpec(text).next_after(now)
        except (ValueError, KeyError):
            return None
        if nxt:
            found.append(nxt)
    return min(found) if found else None
