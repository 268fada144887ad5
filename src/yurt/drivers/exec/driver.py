"""exec: run a command isolated in namespaces, a chroot and a cgroup, as `user` (default nobody).

It is raw_exec's detached supervisor with an isolating launcher in front of the task
(`yurt.drivers.exec.launcher`): stop, signal, wait and recovery after an agent restart
work exactly as for raw_exec. Task config: `command` (required), `args`, `pid_mode`,
`ipc_mode` ("private" or "host"), `cap_add`, `cap_drop`, `work_dir` (inside the chroot).
Resources come from TaskConfig's `memory_mb`, `memory_max_mb`, `cpu_shares`, or when
those are 0 from the task env Nomad sets (`NOMAD_MEMORY_LIMIT`, `NOMAD_MEMORY_MAX_LIMIT`,
`NOMAD_CPU_LIMIT`), else Nomad's defaults (300 MB, 100 MHz): the memory limit is
memory_max when set, else memory; the cpu weight is cpu MHz as v1 `cpu.shares`
(converted to v2 `cpu.weight`). An OOM kill in the task's cgroup makes the exit result
`oom_killed=True` with err "OOM Killed". Host paths under the task dir or the shared
alloc dir in the env, command and args (NOMAD_TASK_DIR, ${NOMAD_ALLOC_DIR}/...) are
translated to the chroot's (/local, /alloc, /secrets).
"""

import asyncio
import os
import pwd
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from ..base import (
    DriverError,
    DriverFingerprint,
    ExecInput,
    ExecOutput,
    ExitResult,
    TaskConfig,
    TaskHandle,
    check_keys,
)
from ..execproc import exec_process
from ..raw_exec import RawExecDriver, supervisor_state_dir
from ..supervisor import read_json, write_json_atomic
from . import capabilities, linux
from .cgroups import CgroupLimits, TaskCgroup, detect_layout
from .chroot import DEFAULT_CHROOT_ENV, prepare_task_dir, remove_chroot
from .launcher import ISOLATION_FILE, LAUNCH_FILE

CONFIG_SPEC: dict[str, Any] = {
    "command": str,
    "args": list,
    "pid_mode": str,
    "ipc_mode": str,
    "cap_add": list,
    "cap_drop": list,
    "work_dir": str,
}
MODES = ("private", "host")
# `plugin "exec" { config { ... } }` (Nomad's exec plugin config; java takes the same but no_pivot_root)
PLUGIN_CONFIG_SPEC: dict[str, Any] = {
    "default_pid_mode": str,
    "default_ipc_mode": str,
    "no_pivot_root": bool,  # accepted: yurt's chroot never pivots
    "allow_caps": list,
    "denied_host_uids": str,
    "denied_host_gids": str,
}
DEFAULT_USER = "nobody"
OOM_FILE = "oom.json"
# `python -I` ignores PYTHONPATH (the task's env must not steer a root process); the launcher
# still runs the same yurt code as this agent, wherever it was imported from.
YURT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAUNCHER = "import sys; sys.path.insert(0, sys.argv[1]); from yurt.drivers.exec.launcher import main; sys.exit(main(sys.argv[2:]))"
LAUNCH_TIMEOUT = 15.0
# sh -c: join the task's cgroup (each cgroup.procs file before "--"), then exec the rest
JOIN_THEN_EXEC = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"'


def isolation_unavailable() -> str:
    """Why this machine cannot isolate tasks, or "" when it can."""
    if not sys.platform.startswith("linux"):
        return "exec driver requires Linux"
    if os.geteuid() != 0:
        return "exec driver must run as root"
    if not linux.namespaces_available():
        return "Linux namespaces are not available"
    if detect_layout() is None:
        return "no cgroup hierarchy with the memory and cpu controllers is mounted"
    return ""


def _env_int(env: dict[str, str], key: str, default: int) -> int:
    """A positive integer from the task env, else `default` (unset, 0 or garbage)."""
    try:
        value = int(env.get(key, default))
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def task_limits(cfg: TaskConfig) -> CgroupLimits:
    """memory / memory_max / cpu of the task (TaskConfig fields when present, else the task env)."""
    return CgroupLimits(
        memory_mb=int(getattr(cfg, "memory_mb", 0) or _env_int(cfg.env, "NOMAD_MEMORY_LIMIT", 300)),
        memory_max_mb=int(getattr(cfg, "memory_max_mb", 0) or _env_int(cfg.env, "NOMAD_MEMORY_MAX_LIMIT", 0)),
        cpu_shares=int(getattr(cfg, "cpu_shares", 0) or _env_int(cfg.env, "NOMAD_CPU_LIMIT", 100)),
    )


def _string_list(config: dict[str, Any], key: str) -> list[str]:
    value = config.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def validate_isolation_keys(config: dict[str, Any], allow_caps: tuple[str, ...]) -> list[str]:
    """Errors in the keys exec and java share (modes, capabilities, list items), naming the key."""
    errors = []
    for key in ("pid_mode", "ipc_mode"):
        value = config.get(key)
        if isinstance(value, str) and value not in ("", *MODES):
            errors.append(f'Invalid value for "{key}": "{value}" (must be "private" or "host")')
    for key in ("args", "cap_add", "cap_drop"):
        value = config.get(key)
        for i, item in enumerate(value if isinstance(value, list) else []):
            if not isinstance(item, str):
                errors.append(f'Incorrect attribute value type for "{key}[{i}]": a string is required')
    for key in ("cap_add", "cap_drop"):
        for name in capabilities.unknown_caps(_string_list(config, key)):
            errors.append(f'Invalid value for "{key}": unknown capability "{name}"')
    try:
        capabilities.effective_caps(_string_list(config, "cap_add"), [], allow_caps)
    except ValueError as exc:
        errors.append(f'Invalid value for "cap_add": {exc}')
    return errors


def chroot_path(value: str, task_dir: str, alloc_shared_dir: str) -> str:
    """A host path under the task dir or the shared alloc dir as the task sees it in its
    chroot (NOMAD_TASK_DIR -> /local, NOMAD_ALLOC_DIR -> /alloc, ...); other values as they are."""
    for host, seen in ((alloc_shared_dir, "/alloc"), (task_dir, "/")):
        host = host.rstrip("/")
        if value == host:
            return seen
        if value.startswith(host + "/"):
            return os.path.join(seen, value[len(host) + 1:])
    return value


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _chroot_has(root: str, program: str) -> bool:
    return any(os.access(os.path.join(root, d, program), os.X_OK) for d in ("usr/bin", "bin", "usr/sbin", "sbin"))


def _lookup_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise DriverError(f'failed to start task: user "{name}" not found') from None


def parse_id_ranges(text: str, option: str) -> set[int]:
    """Nomad's `denied_host_uids` / `denied_host_gids` syntax: "0,10-20" (ValueError names the option)."""
    ids: set[int] = set()
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f'{option}: invalid id range "{part}"') from None
        if first > last:
            raise ValueError(f'{option}: invalid id range "{part}" (start after end)')
        ids.update(range(first, last + 1))
    return ids


def validate_plugin_config(config: dict[str, Any], spec: dict[str, Any] = PLUGIN_CONFIG_SPEC) -> list[str]:
    """Errors in the exec (or java) plugin config, each naming the key."""
    errors = check_keys(config, spec)
    for key in ("default_pid_mode", "default_ipc_mode"):
        value = config.get(key)
        if isinstance(value, str) and value not in MODES:
            errors.append(f'Invalid value for "{key}": "{value}" (must be "private" or "host")')
    caps = config.get("allow_caps")
    for i, item in enumerate(caps if isinstance(caps, list) else []):
        if not isinstance(item, str):
            errors.append(f'Incorrect attribute value type for "allow_caps[{i}]": a string is required')
    for name in capabilities.unknown_caps(_string_list(config, "allow_caps")):
        errors.append(f'Invalid value for "allow_caps": unknown capability "{name}"')
    for key in ("denied_host_uids", "denied_host_gids"):
        if isinstance(config.get(key), str):
            try:
                parse_id_ranges(config[key], key)
            except ValueError as exc:
                errors.append(f'Invalid value for "{key}": {exc}')
    return errors


def plugin_options(config: dict[str, Any] | None, spec: dict[str, Any] = PLUGIN_CONFIG_SPEC) -> dict[str, Any]:
    """The driver's constructor options from its plugin config; ValueError names a bad key."""
    config = config or {}
    errors = validate_plugin_config(config, spec)
    if errors:
        raise ValueError("; ".join(errors))
    options: dict[str, Any] = {k: config[k] for k in ("default_pid_mode", "default_ipc_mode",
                                                       "denied_host_uids", "denied_host_gids") if config.get(k)}
    if config.get("allow_caps") is not None:
        caps = [capabilities.normalize(c) for c in config["allow_caps"]]
        options["allow_caps"] = capabilities.CAPABILITIES if "all" in caps else tuple(caps)
    return options


class ExecDriver(RawExecDriver):
    """Isolated exec; see the module docstring. Plugin options mirror Nomad's exec plugin config."""

    name = "exec"
    plugin_config_spec = PLUGIN_CONFIG_SPEC

    @classmethod
    def from_plugin_config(cls, config: dict[str, Any] | None) -> "ExecDriver":
        return cls(**plugin_options(config, cls.plugin_config_spec))

    def __init__(
        self,
        default_pid_mode: str = "private",
        default_ipc_mode: str = "private",
        allow_caps: tuple[str, ...] = capabilities.DEFAULT_CAPS,
        chroot_env: tuple[str, ...] = DEFAULT_CHROOT_ENV,
        denied_host_uids: str = "",
        denied_host_gids: str = "",
    ):
        super().__init__(enabled=True)
        self.denied_uids = parse_id_ranges(denied_host_uids, "denied_host_uids")
        self.denied_gids = parse_id_ranges(denied_host_gids, "denied_host_gids")
        self.default_pid_mode = default_pid_mode
        self.default_ipc_mode = default_ipc_mode
        self.allow_caps = tuple(capabilities.normalize(c) for c in allow_caps)
        self.chroot_env = tuple(chroot_env)

    def fingerprint(self) -> DriverFingerprint:
        reason = isolation_unavailable()
        if reason:
            return DriverFingerprint(detected=False, healthy=False, health_description=reason)
        return DriverFingerprint(detected=True, healthy=True, health_description="Healthy", attributes={"driver.exec": "1"})

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        errors = check_keys(config, CONFIG_SPEC, required=("command",))
        return errors + validate_isolation_keys(config, self.allow_caps)

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        reason = isolation_unavailable()
        if reason:
            raise DriverError(f'driver "{self.name}" cannot run tasks on this client: {reason}')
        errors = self.validate_config(cfg.config)
        if errors:
            raise DriverError("; ".join(errors))
        layout = detect_layout()
        assert layout is not None
        cgroup = TaskCgroup.for_task(layout, f"{cfg.alloc_id}.{cfg.task_name}")
        state_dir = supervisor_state_dir(cfg.task_dir)
        try:
            cgroup.create(task_limits(cfg))
            os.makedirs(state_dir, exist_ok=True)
            for name in (LAUNCH_FILE, OOM_FILE):
                if os.path.exists(os.path.join(state_dir, name)):
                    os.unlink(os.path.join(state_dir, name))
            user = self._allowed_user(cfg.user or DEFAULT_USER)
            prepare_task_dir(cfg.task_dir, os.path.join(cfg.alloc_dir, "alloc"), user.pw_uid, user.pw_gid)
            write_json_atomic(os.path.join(state_dir, ISOLATION_FILE), self._isolation_spec(cfg, cgroup))
            handle = await super().start_task(cfg)
        except (OSError, DriverError) as exc:
            await asyncio.to_thread(self._cleanup, cgroup, cfg.task_dir)
            raise exc if isinstance(exc, DriverError) else DriverError(f"failed to start task: {exc}") from exc
        # a restarted task reuses its cgroup: only OOM kills after this start count
        handle.state.update(cgroup=cgroup.to_state(), root=cfg.task_dir, oom_kills_before=cgroup.oom_kills())
        launched = await self._wait_for_launch(state_dir)
        if launched.get("error"):
            if self.inspect_task(handle).state == "running":
                await self.stop_task(handle, 0, "SIGKILL")
            await self.wait_task(handle)
            await asyncio.to_thread(self._cleanup, cgroup, cfg.task_dir)
            raise DriverError(launched["error"])
        handle.state["init_pid"] = int(launched.get("init_pid") or 0)
        return handle

    def _allowed_user(self, name: str) -> pwd.struct_passwd:
        user = _lookup_user(name)
        if user.pw_uid in self.denied_uids:
            raise DriverError(f'running as uid {user.pw_uid} (user "{name}") is disallowed by denied_host_uids')
        if user.pw_gid in self.denied_gids:
            raise DriverError(f'running as gid {user.pw_gid} (user "{name}") is disallowed by denied_host_gids')
        return user

    def _isolation_spec(self, cfg: TaskConfig, cgroup: TaskCgroup) -> dict[str, Any]:
        config = cfg.config
        caps = capabilities.effective_caps(config.get("cap_add"), config.get("cap_drop"), self.allow_caps)
        shared = os.path.join(cfg.alloc_dir, "alloc")

        def inside(value: str) -> str:
            return chroot_path(value, cfg.task_dir, shared)

        return {
            "root": cfg.task_dir,
            "alloc_shared_dir": shared,
            "command": inside(config["command"]),
            "args": [inside(str(a)) for a in config.get("args") or []],
            "env": {key: inside(value) for key, value in cfg.env.items()},
            "work_dir": config.get("work_dir") or "/",
            "user": cfg.user or DEFAULT_USER,
            "pid_mode": config.get("pid_mode") or self.default_pid_mode,
            "ipc_mode": config.get("ipc_mode") or self.default_ipc_mode,
            "caps": capabilities.cap_numbers(caps),
            "chroot_env": list(self.chroot_env),
            "cgroup": cgroup.to_state(),
            "mounts": [asdict(m) for m in cfg.mounts],
        }

    def _spec(self, cfg: TaskConfig) -> dict[str, Any]:
        """The supervisor runs the launcher as the task's process."""
        spec = super()._spec(cfg)
        isolation = os.path.join(supervisor_state_dir(cfg.task_dir), ISOLATION_FILE)
        spec.update(command=sys.executable, args=["-I", "-c", LAUNCHER, YURT_ROOT, isolation], cwd=cfg.task_dir)
        return spec

    async def _wait_for_launch(self, state_dir: str) -> dict[str, Any]:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        path = os.path.join(state_dir, LAUNCH_FILE)
        while time.monotonic() < deadline:
            data = read_json(path)
            if data is not None:
                return data
            await asyncio.sleep(0.01)
        return {"error": f"task did not start within {LAUNCH_TIMEOUT:.0f}s"}

    def _cgroup(self, handle: TaskHandle) -> TaskCgroup | None:
        return TaskCgroup.from_state(handle.state.get("cgroup"))

    def _oom_killed(self, handle: TaskHandle) -> bool:
        path = os.path.join(handle.state["state_dir"], OOM_FILE)
        recorded = read_json(path)
        if recorded is not None:
            return bool(recorded.get("oom_killed"))
        cgroup = self._cgroup(handle)
        if cgroup is None or not cgroup.exists():
            return False
        killed = cgroup.oom_kills() > int(handle.state.get("oom_kills_before") or 0)
        write_json_atomic(path, {"oom_killed": killed})
        return killed

    def _read_exit(self, handle: TaskHandle) -> ExitResult | None:
        result = super()._read_exit(handle)
        if result is not None and (result.signal or result.exit_code) and self._oom_killed(handle):
            result.oom_killed = True
            result.err = result.err or "OOM Killed"
        return result

    async def destroy_task(self, handle: TaskHandle, force: bool = False) -> None:
        await super().destroy_task(handle, force)
        if self._read_exit(handle) is not None:
            self._oom_killed(handle)  # remember it before the cgroup goes
        await asyncio.to_thread(self._cleanup, self._cgroup(handle), handle.state.get("root", ""))

    def _cleanup(self, cgroup: TaskCgroup | None, root: str) -> None:
        if cgroup is not None:
            cgroup.destroy()
        if root:
            remove_chroot(root, self.chroot_env)

    def _task_pid(self, handle: TaskHandle) -> str:
        """The host pid of the task's process (the init's child); DriverError when not running."""
        init_pid = int(handle.state.get("init_pid") or 0)
        children = _read_text(f"/proc/{init_pid}/task/{init_pid}/children").split() if init_pid else []
        if not children or self._read_exit(handle) is not None:
            raise DriverError(f"task {handle.task_id} is not running")
        return children[0]

    def exec_argv(self, handle: TaskHandle, command: list[str]) -> list[str]:
        """argv that runs `command` inside the running task: its cgroup, namespaces, chroot and
        user (for `alloc exec`; the caller runs it, e.g. in a pty). DriverError when not running."""
        task_pid = self._task_pid(handle)
        status = _read_text(f"/proc/{task_pid}/status")
        uid = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        gid = re.search(r"^Gid:\s+(\d+)", status, re.MULTILINE)
        user = ["-S", uid.group(1), "-G", gid.group(1)] if uid and gid and uid.group(1) != "0" else []
        enter = ["nsenter", "-t", task_pid, "-m", "-u", "-i", "-p", "-r", "-w", *user, "--", *command]
        cgroup = self._cgroup(handle)
        if cgroup is None:
            return enter
        procs = [os.path.join(path, "cgroup.procs") for path in cgroup.paths.values()]
        return ["/bin/sh", "-c", JOIN_THEN_EXEC, "yurt-exec", *procs, "--", *enter]

    async def exec_streaming(
        self, handle: TaskHandle, command: list[str], tty: bool, stdin: AsyncIterator[ExecInput], output: ExecOutput
    ) -> int:
        """The command enters the task's namespaces, chroot, cgroup and user (`exec_argv`), with the
        task's environment. A task started without isolation (java without root) runs like raw_exec's."""
        if not handle.state.get("init_pid"):
            return await super().exec_streaming(handle, command, tty, stdin, output)
        self._check_exec(handle, command)
        # a shell's job control needs its session leader inside the pid namespace: there `setsid -c`
        # (util-linux, when the chroot has it) makes the pty its controlling terminal
        in_session = tty and _chroot_has(f"/proc/{self._task_pid(handle)}/root", "setsid")
        argv = self.exec_argv(handle, ["setsid", "-w", "-c", *command] if in_session else command)
        isolation = read_json(os.path.join(handle.state["state_dir"], ISOLATION_FILE)) or {}
        return await exec_process(argv, isolation.get("env") or {}, None, tty, stdin, output,
                                  take_terminal=not in_session)

    def task_pids(self, handle: TaskHandle) -> list[int]:
        cgroup = self._cgroup(handle)
        pids = cgroup.pids() if cgroup is not None and cgroup.exists() else []
        return pids or super().task_pids(handle)
