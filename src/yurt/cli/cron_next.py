"""The next launch of a periodic job, for `job run` and `job status` output (the cron
rules live in `yurt.structs.cron`)."""

from datetime import datetime

from yurt.structs.cron import next_launch_after


def next_launch(periodic: dict, now_seconds: float) -> datetime | None:
    """The next launch of a job's `Periodic` block (None when disabled or not understood)."""
    if not periodic or periodic.get("Enabled") is False:
        return None
    specs = [periodic.get("Spec") or "", *(periodic.get("Specs") or [])]
    found = [t for s in filter(None, specs)
             if (t := next_launch_after(s, None, periodic.get("TimeZone") or "UTC", now_seconds)) is not None]
    if len(found) != len([s for s in specs if s]):
        return None
    return min(found) if found else None
