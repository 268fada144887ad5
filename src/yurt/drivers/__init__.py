"""Task drivers behind one `Driver` interface (`yurt.drivers.base`)."""

from typing import Any

from .base import Driver, DriverError, ExitResult, TaskConfig, TaskHandle, TaskStatus  # noqa: F401

BUILTIN_DRIVERS = ("raw_exec", "exec", "java", "docker", "mock_driver")
MOCK_PLUGIN_CONFIG_SPEC: dict[str, Any] = {
    "enabled": bool,
    "fs_isolation": str,
    "shutdown_periodic_after": bool,
    "shutdown_periodic_duration": (str, int),
}


def validate_plugin_config(name: str, config: dict[str, Any]) -> list[str]:
    """Errors in `plugin "<name>" { config { ... } }` for a built-in driver, each naming the
    (dotted) key; [] for other plugin names (external plugins are not checked)."""
    from .base import check_keys

    if name == "docker":
        from .docker.config import validate_plugin_config as docker_errors

        return docker_errors(config)
    if name in ("exec", "java"):
        from .exec.driver import validate_plugin_config as isolation_errors
        from .java.driver import PLUGIN_CONFIG_SPEC as JAVA_SPEC

        return isolation_errors(config, JAVA_SPEC) if name == "java" else isolation_errors(config)
    if name == "raw_exec":
        from .raw_exec import PLUGIN_CONFIG_SPEC as RAW_EXEC_SPEC

        return check_keys(config, RAW_EXEC_SPEC)
    if name == "mock_driver":
        return check_keys(config, MOCK_PLUGIN_CONFIG_SPEC)
    return []


def builtin_drivers(
    raw_exec_enabled: bool = False,
    mock_enabled: bool = True,
    docker_plugin_config: dict | None = None,
    plugin_configs: dict[str, dict[str, Any]] | None = None,
    alloc_root: str | None = None,
) -> dict[str, Driver]:
    """The drivers a client offers: raw_exec (off unless enabled), exec, java and docker (each
    fingerprints whether it can run here), and mock_driver. `plugin_configs` maps a driver name to
    the map of its `plugin "<name>" { config { ... } }` (`docker_plugin_config` is docker's alone);
    `alloc_root` (`<data_dir>/alloc`) scopes docker's dangling-container reaping to this client.
    Raises ValueError naming the key of a plugin config the driver rejects."""
    from .docker import DockerDriver, DockerPluginConfig
    from .exec import ExecDriver
    from .java import JavaDriver
    from .mock import MockDriver
    from .raw_exec import RawExecDriver

    configs = dict(plugin_configs or {})
    if docker_plugin_config is not None:
        configs["docker"] = docker_plugin_config
    for name, config in configs.items():
        errors = validate_plugin_config(name, config or {})
        if errors:
            raise ValueError(f'plugin "{name}": ' + "; ".join(errors))
    drivers: dict[str, Driver] = {
        "raw_exec": RawExecDriver(enabled=raw_exec_enabled),
        "exec": ExecDriver.from_plugin_config(configs.get("exec")),
        "java": JavaDriver.from_plugin_config(configs.get("java")),
        "docker": DockerDriver(DockerPluginConfig.from_plugin_config(configs.get("docker")), alloc_root=alloc_root),
    }
    if mock_enabled:
        drivers["mock_driver"] = MockDriver()
    return drivers
