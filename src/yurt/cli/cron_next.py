"""The next launch of a periodic job, for `job run` and `job status` output (the cron
rules live in `yurt.structs.cron`)."""

from datetime import datetime

from yurt.structs.cron import next_launch_after


def next_launch(periodic: dict, now_seconds: float) -> datetime | None:
    """The next launch of a job's `Periodic` block as Nomad's api.PeriodicConfig.Next gives it
    (`Spec` when set, else the earliest of `Specs`; `Enabled` is not looked at). None when
    there is no block or a spec is not understood."""
    if not periodic:
        return None
    return next_launch_after(periodic.get("Spec") or "", periodic.get("Specs"), periodic.get("TimeZone") or "UTC",
                             now_seconds)
