"""Task drivers behind one `Driver` interface (`yurt.drivers.base`)."""

from .base import Driver, DriverError, ExitResult, TaskConfig, TaskHandle, TaskStatus  # noqa: F401


def builtin_drivers(raw_exec_enabled: bool = False, mock_enabled: bool = True) -> dict[str, Driver]:
    """The drivers a client offers: raw_exec (off unless enabled), exec and java (each
    fingerprints whether it can run here), and mock_driver."""
    from .exec import ExecDriver
    from .java import JavaDriver
    from .mock import MockDriver
    from .raw_exec import RawExecDriver

    drivers: dict[str, Driver] = {
        "raw_exec": RawExecDriver(enabled=raw_exec_enabled),
        "exec": ExecDriver(),
        "java": JavaDriver(),
    }
    if mock_enabled:
        drivers["mock_driver"] = MockDriver()
    return drivers
