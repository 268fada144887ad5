"""The isolating `exec` task driver (namespaces, chroot, cgroups); see `driver.py`."""

from .driver import ExecDriver, isolation_unavailable, task_limits  # noqa: F401
