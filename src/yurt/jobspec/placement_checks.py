"""Validation of constraints, affinities, spreads and policies (Nomad's wording)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yurt.structs.base import SECOND
from yurt.structs.durations import format_duration
from yurt.structs.job import (
    Affinity,
    Constraint,
    PeriodicConfig,
    RestartPolicy,
    Spread,
    UpdateStrategy,
)

_COMPARISONS = ("=", "==", "is", "!=", "not", "<", "<=", ">", ">=")
_SET_CONTAINS = ("set_contains", "set_contains_all", "set_contains_any")
_VERSION_PART = re.compile(r"^\s*(=|!=|>|<|>=|<=|~>)?\s*v?\d+(\.\d+)*([-+][0-9A-Za-z.+-]*)?\s*$")
RESTART_MIN_INTERVAL = 5 * SECOND


def _regex_error(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"error parsing regexp: {exc.msg}: `{pattern}`"
    return None


def _version_error(spec: str) -> str | None:
    parts = spec.split(",")
    if not spec.strip() or not all(_VERSION_PART.match(p) for p in parts):
        return f"Malformed constraint: {spec}"
    return None


def check_constraint(c: Constraint) -> list[str]:
    errors = []
    if not c.operand:
        errors.append("Missing constraint operand")
    need_ltarget = c.operand != "distinct_hosts"
    if c.operand in ("distinct_hosts", ""):
        pass
    elif c.operand in _SET_CONTAINS:
        if not c.r_target:
            errors.append("Set contains constraint requires an RTarget")
    elif c.operand == "regexp":
        if (err := _regex_error(c.r_target)) is not None:
            errors.append(f"Regular expression failed to compile: {err}")
    elif c.operand in ("version", "semver"):
        if (err := _version_error(c.r_target)) is not None:
            kind = "Version" if c.operand == "version" else "Semver"
            errors.append(f"{kind} constraint is invalid: {err}")
    elif c.operand == "distinct_property":
        if c.r_target:
            if not c.r_target.isdigit():
                errors.append(f'Failed to convert RTarget "{c.r_target}" to uint64: '
                              f'strconv.ParseUint: parsing "{c.r_target}": invalid syntax')
            elif int(c.r_target) < 1:
                errors.append(f"Distinct Property must have an allowed count of 1 or greater: {c.r_target} < 1")
    elif c.operand in ("is_set", "is_not_set"):
        if c.r_target:
            errors.append(f'Operator "{c.operand}" does not support an RTarget')
    elif c.operand in _COMPARISONS:
        if not c.r_target:
            errors.append(f'Operator "{c.operand}" requires an RTarget')
    else:
        errors.append(f'Unknown constraint type "{c.operand}"')
    if need_ltarget and not c.l_target:
        errors.append("no attribute provided but is required by operator")
    return errors


def check_affinity(a: Affinity) -> list[str]:
    errors = []
    if not a.operand:
        errors.append("Missing affinity operand")
    elif a.operand in _SET_CONTAINS:
        if not a.r_target:
            errors.append("Set contains operators require an RTarget")
    elif a.operand == "regexp":
        if (err := _regex_error(a.r_target)) is not None:
            errors.append(f"Regular expression failed to compile: {err}")
    elif a.operand in ("version", "semver"):
        if (err := _version_error(a.r_target)) is not None:
            kind = "Version" if a.operand == "version" else "Semver"
            errors.append(f"{kind} affinity is invalid: {err}")
    elif a.operand in _COMPARISONS:
        if not a.r_target:
            errors.append(f'Operator "{a.operand}" requires an RTarget')
    else:
        errors.append(f'Unknown affinity operator "{a.operand}"')
    if not a.l_target:
        errors.append("No LTarget provided but is required")
    if a.weight == 0:
        errors.append("Affinity weight cannot be zero")
    if not -100 <= a.weight <= 100:
        errors.append("Affinity weight must be within the range [-100,100]")
    return errors


def check_spread(s: Spread) -> list[str]:
    errors = []
    if not s.attribute:
        errors.append("Missing spread attribute")
    if s.weight <= 0 or s.weight > 100:
        errors.append("Spread block must have a positive weight from 0 to 100")
    seen: set[str] = set()
    total = 0
    for target in s.spread_target or ():
        if target.value in seen:
            errors.append(f'Spread target value "{target.value}" already defined')
        seen.add(target.value)
        if not 0 <= target.percent <= 100:
            errors.append(f'Spread target percentage for value "{target.value}" must be between 0 and 100')
        total += target.percent
    if total > 100:
        errors.append(f"Sum of spread target percentages must not be greater than 100%; got {total}%")
    return errors


def check_restart_policy(r: RestartPolicy, group_name: str) -> list[str]:
    errors = []
    if r.mode not in ("delay", "fail"):
        errors.append(f'Unsupported restart mode: "{r.mode}"')
    if r.attempts == 0 and r.mode != "fail":
        errors.append(f'Restart policy "{r.mode}" with {r.attempts} attempts is ambiguous')
    if r.interval and r.interval < RESTART_MIN_INTERVAL:
        errors.append(f"Interval can not be less than {format_duration(RESTART_MIN_INTERVAL)} "
                      f"(got {format_duration(r.interval)})")
    if r.attempts * r.delay > r.interval:
        errors.append(f"Nomad can't restart the TaskGroup {r.attempts} times in an interval of "
                      f"{format_duration(r.interval)} with a delay of {format_duration(r.delay)}")
    return errors


def check_update_strategy(u: UpdateStrategy) -> list[str]:
    errors = []
    if u.health_check not in ("checks", "task_states", "manual"):
        errors.append(f'Invalid health check given: "{u.health_check}"')
    if u.max_parallel < 0:
        errors.append(f"Max parallel can not be less than zero: {u.max_parallel} < 0")
    if u.canary < 0:
        errors.append(f"Canary count can not be less than zero: {u.canary} < 0")
    if u.canary == 0 and u.auto_promote:
        errors.append("Auto Promote requires a Canary count greater than zero")
    if u.min_healthy_time < 0:
        errors.append(f"Minimum healthy time may not be less than zero: {format_duration(u.min_healthy_time)}")
    if u.healthy_deadline <= 0:
        errors.append(f"Healthy deadline must be greater than zero: {format_duration(u.healthy_deadline)}")
    if u.progress_deadline < 0:
        errors.append(f"Progress deadline must be zero or greater: {format_duration(u.progress_deadline)}")
    if u.min_healthy_time >= u.healthy_deadline:
        errors.append("Minimum healthy time must be less than healthy deadline: "
                      f"{format_duration(u.min_healthy_time)} > {format_duration(u.healthy_deadline)}")
    if u.progress_deadline != 0 and u.healthy_deadline >= u.progress_deadline:
        errors.append("Healthy deadline must be less than progress deadline: "
                      f"{format_duration(u.healthy_deadline)} > {format_duration(u.progress_deadline)}")
    if u.stagger <= 0:
        errors.append(f"Stagger must be greater than zero: {format_duration(u.stagger)}")
    return errors


_CRON_SHORTCUTS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
# (name, low, high, names) for: seconds, minutes, hours, day of month, month, day of week, year
_CRON_FIELDS = {
    "second": (0, 59, ()), "minute": (0, 59, ()), "hour": (0, 23, ()), "day of month": (1, 31, ()),
    "month": (1, 12, _MONTHS), "day of week": (0, 7, _DAYS), "year": (1970, 2099, ()),
}
_FIELD_ORDER = {5: ("minute", "hour", "day of month", "month", "day of week"),
                6: ("minute", "hour", "day of month", "month", "day of week", "year"),
                7: ("second", "minute", "hour", "day of month", "month", "day of week", "year")}


def cron_error(spec: str) -> str | None:
    """Nomad's cron syntax (gorhill/cronexpr): 5, 6 (+ year) or 7 (seconds first) fields."""
    text = spec.strip()
    if text in _CRON_SHORTCUTS or text.startswith("@every "):
        return None
    fields = text.split()
    if len(fields) not in _FIELD_ORDER:
        return f'Invalid cron spec "{spec}": expected 5 to 7 fields, got {len(fields)}'
    for field, name in zip(fields, _FIELD_ORDER[len(fields)]):
        if not _cron_field_ok(field, *_CRON_FIELDS[name]):
            return f'Invalid cron spec "{spec}": syntax error in {name} field "{field}"'
    return None


def _cron_value(text: str, low: int, high: int, names: tuple) -> bool:
    if text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def _cron_field_ok(field: str, low: int, high: int, names: tuple) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base in ("*", "?"):
            continue
        if re.fullmatch(r"\d*[LW#]\d*|L", base):  # last-day / weekday / nth-weekday forms
            continue
        first, dash, last = base.partition("-")
        if not _cron_value(first, low, high, names) or (dash and not _cron_value(last, low, high, names)):
            return False
    return True


def check_periodic(p: PeriodicConfig) -> list[str]:
    errors = []
    if p.spec and p.specs:
        errors.append("Only cron or crons may be used")
    if not p.spec and not p.specs:
        errors.append("Must specify a spec")
    if p.time_zone:
        try:
            ZoneInfo(p.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f'Invalid time zone "{p.time_zone}": unknown time zone {p.time_zone}')
    if p.spec_type == "cron":
        for spec in ([p.spec] if p.spec else []) + list(p.specs or ()):
            if (err := cron_error(spec)) is not None:
                errors.append(err)
    elif p.spec_type != "test":
        errors.append(f'Unknown periodic specification type "{p.spec_type}"')
    return errors
