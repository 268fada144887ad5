"""The interface every task driver implements, and the values that cross it.

A driver starts a task described by a `TaskConfig` and returns a `TaskHandle`: a small
JSON-serialisable record the client stores in its local state, so that a new agent
process can `recover_task` the same task after a restart.
"""

import abc
import signal as _signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any


class DriverError(Exception):
    """A driver could not do what was asked; `recoverable` tasks may be retried."""

    def __init__(self, message: str, recoverable: bool = False):
        super().__init__(message)
        self.recoverable = recoverable


@dataclass
class MountConfig:
    """A host path bind-mounted into the task (Nomad's drivers.MountConfig), e.g. a host volume."""

    task_path: str  # absolute inside the task, or relative to the task dir
    host_path: str
    readonly: bool = False
    propagation_mode: str = "private"  # private | host-to-task | bidirectional


@dataclass
class TaskConfig:
    """Everything a driver needs to start one task."""

    alloc_id: str
    task_name: str
    config: dict[str, Any]
    env: dict[str, str]
    alloc_dir: str  # <data_dir>/alloc/<alloc_id>
    task_dir: str  # <alloc_dir>/<task>
    log_dir: str  # <alloc_dir>/alloc/logs
    max_files: int = 10
    max_file_size_mb: int = 10
    kill_signal: str = "SIGINT"
    kill_timeout: int = 5_000_000_000  # ns
    user: str = ""
    logs_disabled: bool = False  # the task's `logs { disabled = true }`: output is discarded
    # allocated resources (drivers that enforce limits use them; 0 = unknown)
    cpu_shares: int = 0
    memory_mb: int = 0
    memory_max_mb: int = 0
    mounts: list[MountConfig] = field(default_factory=list)  # host volumes (`volume_mount`)

    @property
    def id(self) -> str:
        return f"{self.alloc_id}/{self.task_name}"

    @property
    def stdout_base(self) -> str:
        return f"{self.log_dir}/{self.task_name}.stdout"

    @property
    def stderr_base(self) -> str:
        return f"{self.log_dir}/{self.task_name}.stderr"


@dataclass
class TaskHandle:
    """What survives an agent restart: enough to find and re-attach to the task."""

    driver: str
    task_id: str
    pid: int = 0
    supervisor_pid: int = 0
    started_at: int = 0  # unix ns
    state: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskHandle":
        return cls(**data)


@dataclass
class ExitResult:
    exit_code: int = 0
    signal: int = 0
    oom_killed: bool = False
    err: str = ""
    finished_at: int = 0  # unix ns

    @property
    def successful(self) -> bool:
        return self.exit_code == 0 and self.signal == 0 and not self.err


@dataclass
class TaskStatus:
    state: str  # "running" | "exited" | "unknown"
    handle: TaskHandle
    exit_result: ExitResult | None = None


@dataclass
class ExecInput:
    """One message from an `alloc exec` user: stdin bytes, the end of stdin, or a terminal size."""

    data: bytes = b""
    close: bool = False
    tty_size: tuple[int, int] | None = None  # (height, width)


# `output(stream, data)`: stream is "stdout" or "stderr" (a tty merges both into "stdout")
ExecOutput = Callable[[str, bytes], Awaitable[None]]


@dataclass
class DriverFingerprint:
    detected: bool
    healthy: bool
    health_description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def parse_signal(name: str) -> int:
    """`"SIGTERM"`, `"TERM"` or `"15"` -> 15; raises DriverError naming the value."""
    text = (name or "").strip().upper()
    if text.isdigit():
        return int(text)
    if text and not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(_signal.Signals, text))
    except AttributeError:
        raise DriverError(f'invalid signal "{name}"') from None


class Driver(abc.ABC):
    """A task driver. Methods that block are coroutines; the rest are quick."""

    name: str = ""

    @abc.abstractmethod
    def fingerprint(self) -> DriverFingerprint: ...

    @abc.abstractmethod
    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """Errors in the task's `config` block, each naming the key."""

    @abc.abstractmethod
    async def start_task(self, cfg: TaskConfig) -> TaskHandle: ...

    @abc.abstractmethod
    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        """Returns when the task has exited (immediately if it already has)."""

    @abc.abstractmethod
    async def stop_task(self, handle: TaskHandle, timeout: int, signal: str) -> None:
        """Send `signal`, wait `timeout` ns for the exit, then kill."""

    @abc.abstractmethod
    async def destroy_task(self, handle: TaskHandle, force: bool = False) -> None:
        """Forget the task (killing it first when `force`)."""

    @abc.abstractmethod
    async def signal_task(self, handle: TaskHandle, signal: str) -> None: ...

    @abc.abstractmethod
    async def recover_task(self, handle: TaskHandle) -> None:
        """Re-attach to a task started by an earlier agent; DriverError if it cannot."""

    @abc.abstractmethod
    def inspect_task(self, handle: TaskHandle) -> TaskStatus: ...

    def task_pids(self, handle: TaskHandle) -> list[int]:
        """Host pids of the task (for stats); empty when it runs in-process."""
        return [handle.pid] if handle.pid else []

    async def exec_streaming(
        self, handle: TaskHandle, command: list[str], tty: bool, stdin: AsyncIterator[ExecInput], output: ExecOutput
    ) -> int:
        """Run `command` in the running task's context (`alloc exec`), feeding it `stdin` and passing
        what it writes to `output`, in a pty when `tty`; returns its exit code (128+N when killed by
        signal N). DriverError when the task is not running or the driver cannot exec."""
        raise DriverError(f'driver "{self.name}" does not support exec')


def check_keys(config: dict[str, Any], spec: dict[str, type | tuple[type, ...]], required: tuple[str, ...] = ()) -> list[str]:
    """Validate `config` against a key -> type spec; messages name the key."""
    errors: list[str] = []
    for key in required:
        if config.get(key) in (None, ""):
            errors.append(f'Missing required argument "{key}": the argument "{key}" is required')
    for key, value in config.items():
        if key not in spec:
            errors.append(f'Unsupported argument "{key}": an argument named "{key}" is not expected here')
        elif value is not None and not isinstance(value, spec[key]):
            errors.append(f'Incorrect attribute value type for "{key}": got {type(value).__name__}')
    return errors
