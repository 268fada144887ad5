"""Task drivers behind one `Driver` interface (`yurt.drivers.base`)."""

from .base import Driver, DriverError, ExitResult, TaskConfig, TaskHandle, TaskStatus  # noqa: F401


def builtin_drivers(
    raw_exec_enabled: bool = False, mock_enabled: bool = True, docker_plugin_config: dict | None = None
) -> dict[str, Driver]:
    """The drivers a client offers: raw_exec (off unless enabled), exec, java and docker (each
    fingerprints whether it can run here; `docker_plugin_config` is the map of
    `plugin "docker" { config { ... } }`), and mock_driver."""
    from .docker import DockerDriver, DockerPluginConfig
    from .exec import ExecDriver
    from .java import JavaDriver
    from .mock import MockDriver
    from .raw_exec import RawExecDriver

    drivers: dict[str, Driver] = {
        "raw_exec": RawExecDriver(enabled=raw_exec_enabled),
        "exec": ExecDriver(),
        "java": JavaDriver(),
        "docker": DockerDriver(DockerPluginConfig.from_plugin_config(docker_plugin_config)),
    }
    if mock_enabled:
        drivers["mock_driver"] = MockDriver()
    return drivers
