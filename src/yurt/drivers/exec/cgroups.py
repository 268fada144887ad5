"""Per-task cgroups for the exec driver: memory limit and cpu weight, v2 or v1.

`detect_layout()` reads /proc/self/mountinfo and prefers a cgroup v2 hierarchy that
offers both the memory and cpu controllers (enabling them in its `cgroup.subtree_control`),
else the v1 `memory` and `cpu` hierarchies (with a log line saying why v2 was not used).
v2: `memory.max` = the hard limit (`memory_max` when larger than `memory`, as Nomad),
`memory.low` = `memory` when `memory_max` is set (Nomad's soft limit), `memory.swap.max` 0,
`cpu.weight` from the cpu shares; OOM kills are counted from `memory.events` (`oom_kill`).
Task cgroups live under `<hierarchy>/yurt/<alloc_id>.<task>`; their paths are kept
in the task handle so that a restarted agent can read OOM counters and remove them.
"""

import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
NEEDED = ("memory", "cpu")
PARENT = "yurt"
MB = 1024 * 1024
MIN_MEMORY_BYTES = 4 * MB


@dataclass
class CgroupLayout:
    version: int  # 1 or 2
    roots: dict[str, str]  # v2: {"unified": mount}; v1: {"memory": mount, "cpu": mount}


@dataclass
class CgroupLimits:
    memory_mb: int = 300
    memory_max_mb: int = 0
    cpu_shares: int = 100

    @property
    def limit_bytes(self) -> int:
        mb = self.memory_max_mb if self.memory_max_mb > self.memory_mb else self.memory_mb
        return max(mb * MB, MIN_MEMORY_BYTES)

    @property
    def reservation_bytes(self) -> int:
        return self.memory_mb * MB if self.memory_max_mb > self.memory_mb else 0


def cpu_weight_from_shares(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares (the conversion runc and Nomad use)."""
    shares = min(max(int(shares), 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def parse_mountinfo(text: str) -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup mount in a mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        mounts.append((point, tail[0], set(tail[2].split(","))))
    return mounts


def _v2_controllers(mount: str, name: str = "cgroup.controllers") -> set[str]:
    try:
        with open(os.path.join(mount, name)) as f:
            return set(f.read().split())
    except OSError:
        return set()


def enable_v2_controllers(mount: str) -> str:
    """Make the memory and cpu controllers usable below a cgroup v2 root: they must be in its
    `cgroup.controllers` (a controller bound to a v1 hierarchy never is) and are then enabled in
    its `cgroup.subtree_control`. Returns why that is impossible, or ""."""
    available = _v2_controllers(mount)
    missing = sorted(set(NEEDED) - available)
    if missing:
        return (f"cgroup v2 at {mount} lacks the {', '.join(missing)} controller(s) "
                f"(available: {', '.join(sorted(available)) or 'none'})")
    wanted = [c for c in NEEDED if c not in _v2_controllers(mount, "cgroup.subtree_control")]
    if wanted:
        try:
            _write(os.path.join(mount, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            return (f"cannot enable the {', '.join(wanted)} controller(s) in {mount}/cgroup.subtree_control: "
                    f"{exc.strerror or exc}")
    return ""


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        log.info(message)


def detect_layout(mountinfo_path: str = "/proc/self/mountinfo") -> CgroupLayout | None:
    """cgroup v2 when a unified hierarchy offers (or can be made to offer) the memory and cpu
    controllers, else the v1 `memory` and `cpu` hierarchies; the fallback is logged once."""
    try:
        with open(mountinfo_path) as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return None
    v2_problems = []
    for point, fstype, _ in mounts:
        if fstype == "cgroup2":
            problem = enable_v2_controllers(point)
            if not problem:
                return CgroupLayout(2, {"unified": point})
            v2_problems.append(problem)
    v1 = _v1_roots(mounts)
    if v1 is not None:
        for problem in v2_problems:
            _log_once(f"exec: {problem}; using the cgroup v1 memory and cpu hierarchies")
        return CgroupLayout(1, v1)
    for problem in v2_problems:
        _log_once(f"exec: {problem}; and no cgroup v1 memory and cpu hierarchies are mounted")
    return None


def _v1_roots(mounts: list[tuple[str, str, set[str]]]) -> dict[str, str] | None:
    v1: dict[str, str] = {}
    for point, fstype, options in mounts:
        if fstype == "cgroup":
            for controller in ("memory", "cpu"):
                if controller in options and os.access(point, os.W_OK):
                    v1.setdefault(controller, point)
    return v1 if set(NEEDED) <= v1.keys() else None


def _write(path: str, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


@dataclass
class TaskCgroup:
    version: int
    paths: dict[str, str] = field(default_factory=dict)  # controller ("unified" on v2) -> directory

    @classmethod
    def for_task(cls, layout: CgroupLayout, name: str) -> "TaskCgroup":
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return cls(layout.version, {c: os.path.join(root, PARENT, safe) for c, root in layout.roots.items()})

    def to_state(self) -> dict:
        return {"version": self.version, "paths": dict(self.paths)}

    @classmethod
    def from_state(cls, data: dict | None) -> "TaskCgroup | None":
        return cls(int(data["version"]), dict(data["paths"])) if data else None

    def create(self, limits: CgroupLimits) -> None:
        if self.version == 2:
            self._create_v2(self.paths["unified"], limits)
        else:
            self._create_v1(limits)

    def _create_v2(self, path: str, limits: CgroupLimits) -> None:
        parent = os.path.dirname(path)
        root = os.path.dirname(parent)
        for directory in (root, parent):
            os.makedirs(directory, exist_ok=True)
            _write(os.path.join(directory, "cgroup.subtree_control"), "+memory +cpu")
        os.makedirs(path, exist_ok=True)
        _write(os.path.join(path, "memory.max"), limits.limit_bytes)
        if limits.reservation_bytes:
            _write(os.path.join(path, "memory.low"), limits.reservation_bytes)
        if os.path.exists(os.path.join(path, "memory.swap.max")):
            _write(os.path.join(path, "memory.swap.max"), 0)
        _write(os.path.join(path, "cpu.weight"), cpu_weight_from_shares(limits.cpu_shares))

    def _create_v1(self, limits: CgroupLimits) -> None:
        mem, cpu = self.paths["memory"], self.paths["cpu"]
        for path in (mem, cpu):
            os.makedirs(path, exist_ok=True)
        _write(os.path.join(mem, "memory.limit_in_bytes"), limits.limit_bytes)
        if limits.reservation_bytes:
            _write(os.path.join(mem, "memory.soft_limit_in_bytes"), limits.reservation_bytes)
        memsw = os.path.join(mem, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            try:
                _write(memsw, limits.limit_bytes)  # no swapping around the limit
            except OSError:
                pass
        _write(os.path.join(cpu, "cpu.shares"), max(int(limits.cpu_shares), 2))

    def join(self, pid: int) -> None:
        for path in self.paths.values():
            _write(os.path.join(path, "cgroup.procs"), pid)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.paths.values():
            found.update(int(p) for p in _read(os.path.join(path, "cgroup.procs")).split())
        return sorted(found)

    def _memory_dir(self) -> str:
        return self.paths.get("unified") or self.paths["memory"]

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer took from this cgroup."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        match = re.search(r"^oom_kill (\d+)$", _read(os.path.join(self._memory_dir(), name)), re.M)
        return int(match.group(1)) if match else 0

    def memory_usage(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        text = _read(os.path.join(self._memory_dir(), name)).strip()
        return int(text) if text.isdigit() else 0

    def memory_stats(self) -> tuple[dict[str, int], list[str]]:
        """The cgroup's memory figures in Nomad's MemoryStats names, and the names measured."""
        mem = self._memory_dir()
        stat = dict(line.split() for line in _read(os.path.join(mem, "memory.stat")).splitlines()
                    if len(line.split()) == 2)
        if self.version == 2:
            files = {"Usage": "memory.current", "MaxUsage": "memory.peak", "Swap": "memory.swap.current"}
            cache_key = "file"
        else:
            files = {"Usage": "memory.usage_in_bytes", "MaxUsage": "memory.max_usage_in_bytes",
                     "KernelUsage": "memory.kmem.usage_in_bytes", "KernelMaxUsage": "memory.kmem.max_usage_in_bytes"}
            cache_key = "cache"
        figures: dict[str, int] = {}
        for name, filename in files.items():
            text = _read(os.path.join(mem, filename)).strip()
            if text.isdigit():
                figures[name] = int(text)
        if stat.get(cache_key, "").isdigit():
            figures["Cache"] = int(stat[cache_key])
        labels = {"Usage": "Usage", "MaxUsage": "Max Usage", "Swap": "Swap", "Cache": "Cache",
                  "KernelUsage": "Kernel Usage", "KernelMaxUsage": "Kernel Max Usage"}
        return figures, [labels[k] for k in figures]

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths.values())

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill whatever still runs in the cgroup, then remove it."""
        deadline = time.monotonic() + timeout
        while self.exists():
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for path in self.paths.values():
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    if time.monotonic() > deadline:
                        raise
            if self.exists():
                time.sleep(0.02)
