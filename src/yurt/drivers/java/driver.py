"""java: run `java [jvm_options] [-Xmx<memory>m] [-cp class_path] (-jar jar_path | class) [args]`.

With root, namespaces and cgroups (see `isolation_unavailable`) the JVM runs with the
exec driver's isolation: chroot of the task dir, `user` (default nobody), memory limit
and cpu weight in a cgroup, OOM kills reported. Without them (not root, no cgroups)
it runs on the host like raw_exec, unisolated, as the agent's user; the fingerprint
then sets `driver.java.isolation` = "none" instead of "chroot".
Relative `jar_path` and `class_path` entries are relative to the task directory.
"""

import dataclasses
import os
import re
import shutil
import subprocess
from typing import Any

from ..base import DriverError, DriverFingerprint, TaskConfig, TaskHandle, check_keys
from ..exec.driver import PLUGIN_CONFIG_SPEC as EXEC_PLUGIN_CONFIG_SPEC
from ..exec.driver import ExecDriver, isolation_unavailable, task_limits, validate_isolation_keys
from ..raw_exec import RawExecDriver

CONFIG_SPEC: dict[str, Any] = {
    "class": str,
    "class_path": str,
    "jar_path": str,
    "jvm_options": list,
    "args": list,
    "pid_mode": str,
    "ipc_mode": str,
    "cap_add": list,
    "cap_drop": list,
    "work_dir": str,
}
VERSION_TIMEOUT = 20.0
# `plugin "java" { config { ... } }`: exec's keys without no_pivot_root
PLUGIN_CONFIG_SPEC: dict[str, Any] = {k: v for k, v in EXEC_PLUGIN_CONFIG_SPEC.items() if k != "no_pivot_root"}


def parse_java_version(output: str) -> dict[str, str]:
    """`java -version` output (stderr) -> driver.java.{version,runtime,vm} attributes."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("Picked up")]
    if not lines:
        return {}
    match = re.search(r'version "([^"]+)"', lines[0]) or re.search(r"^\S+ (\d[\w.+-]*)", lines[0])
    attrs = {"driver.java.version": match.group(1) if match else ""}
    if len(lines) > 1:
        attrs["driver.java.runtime"] = lines[1]
    if len(lines) > 2:
        attrs["driver.java.vm"] = lines[2]
    return attrs


_version_cache: dict[tuple[str, int], dict[str, str]] = {}


def java_version_attributes(java_binary: str) -> dict[str, str]:
    """`java -version` parsed (cached per binary and modification time: it takes ~0.2 s)."""
    real = os.path.realpath(java_binary)
    key = (real, os.stat(real).st_mtime_ns)
    if key not in _version_cache:
        done = subprocess.run([java_binary, "-version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT)
        _version_cache[key] = parse_java_version(done.stderr or done.stdout) if done.returncode == 0 else {}
    return dict(_version_cache[key])


def java_command(config: dict[str, Any], memory_mb: int) -> list[str]:
    """The JVM's argument list (without the `java` binary)."""
    options = [str(o) for o in config.get("jvm_options") or []]
    argv = list(options)
    if memory_mb > 0 and not any(o.startswith("-Xmx") for o in options):
        argv.append(f"-Xmx{memory_mb}m")
    if config.get("class_path"):
        argv += ["-cp", config["class_path"]]
    if config.get("jar_path"):
        argv += ["-jar", config["jar_path"]]
    else:
        argv.append(config["class"])
    return argv + [str(a) for a in config.get("args") or []]


class JavaDriver(ExecDriver):
    name = "java"
    plugin_config_spec = PLUGIN_CONFIG_SPEC

    def __init__(self, java_binary: str | None = None, **exec_options):
        super().__init__(**exec_options)
        self.java_binary = java_binary or shutil.which("java") or "/usr/bin/java"

    def fingerprint(self) -> DriverFingerprint:
        try:
            attrs = java_version_attributes(self.java_binary)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return DriverFingerprint(detected=False, healthy=False, health_description=f"java not found: {exc}")
        if not attrs:
            return DriverFingerprint(detected=False, healthy=False, health_description="java -version failed")
        attrs["driver.java"] = "1"
        attrs["driver.java.isolation"] = "none" if isolation_unavailable() else "chroot"
        return DriverFingerprint(detected=True, healthy=True, health_description="Healthy", attributes=attrs)

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        errors = check_keys(config, CONFIG_SPEC)
        if not config.get("jar_path") and not config.get("class"):
            errors.append('Missing required argument: one of "jar_path" or "class" must be set')
        for key in ("jvm_options",):
            value = config.get(key)
            for i, item in enumerate(value if isinstance(value, list) else []):
                if not isinstance(item, str):
                    errors.append(f'Incorrect attribute value type for "{key}[{i}]": a string is required')
        return errors + validate_isolation_keys(config, self.allow_caps)

    def _as_exec_config(self, cfg: TaskConfig) -> TaskConfig:
        config = {k: v for k, v in cfg.config.items() if k in ("pid_mode", "ipc_mode", "cap_add", "cap_drop", "work_dir")}
        config.update(command=self.java_binary, args=java_command(cfg.config, task_limits(cfg).memory_mb))
        return dataclasses.replace(cfg, config=config)

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        errors = self.validate_config(cfg.config)
        if errors:
            raise DriverError("; ".join(errors))
        if isolation_unavailable():
            return await RawExecDriver.start_task(self, cfg)
        return await super().start_task(cfg)

    def _isolation_spec(self, cfg: TaskConfig, cgroup) -> dict[str, Any]:
        return super()._isolation_spec(self._as_exec_config(cfg), cgroup)

    def _spec(self, cfg: TaskConfig) -> dict[str, Any]:
        exec_cfg = self._as_exec_config(cfg)
        if isolation_unavailable():
            return RawExecDriver._spec(self, exec_cfg)
        return super()._spec(exec_cfg)

