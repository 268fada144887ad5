"""Shared fixtures for the isolating drivers (exec, java) and pure tests of their parts.

`isolated` starts tasks through a driver and, at teardown (also when a test fails),
destroys them with force, then checks that no cgroup, mount or process is left.
"""

import asyncio
import os

import pytest

from yurt.drivers.base import TaskConfig, TaskHandle
from yurt.drivers.exec import ExecDriver, isolation_unavailable
from yurt.drivers.exec.capabilities import DEFAULT_CAPS, NUMBERS, cap_numbers, effective_caps, unknown_caps
from yurt.drivers.exec.cgroups import CgroupLimits, TaskCgroup, cpu_weight_from_shares, parse_mountinfo
from yurt.drivers.exec.chroot import mounts_under
from yurt.drivers.raw_exec import _process_alive

CANNOT_ISOLATE = isolation_unavailable()


class Isolated:
    """Starts tasks and remembers them for the teardown."""

    def __init__(self, driver: ExecDriver):
        self.driver = driver
        self.handles: list[TaskHandle] = []
        self.roots: list[str] = []

    async def start(self, cfg: TaskConfig) -> TaskHandle:
        self.roots.append(cfg.task_dir)
        handle = await self.driver.start_task(cfg)
        self.handles.append(handle)
        return handle

    async def run(self, cfg: TaskConfig, timeout: float = 30):
        handle = await self.start(cfg)
        result = await asyncio.wait_for(self.driver.wait_task(handle), timeout)
        return handle, result

    async def teardown(self) -> list[str]:
        leftovers = []
        for handle in self.handles:
            try:
                await asyncio.wait_for(self.driver.destroy_task(handle, force=True), 20)
            except Exception as exc:  # noqa: BLE001 - reported below, the others still get cleaned
                leftovers.append(f"destroy {handle.task_id}: {exc!r}")
            cgroup = TaskCgroup.from_state(handle.state.get("cgroup"))
            if cgroup is not None and cgroup.exists():
                leftovers.append(f"cgroup {cgroup.paths}")
                cgroup.destroy()
            for pid in (handle.pid, handle.supervisor_pid, int(handle.state.get("init_pid") or 0)):
                for _ in range(100):  # a supervisor exits just after it recorded the exit
                    if not _process_alive(pid, handle.started_at):
                        break
                    await asyncio.sleep(0.02)
                if _process_alive(pid, handle.started_at):
                    leftovers.append(f"process {pid}")
                    os.kill(pid, 9)
        for root in self.roots:
            if mounts_under(root):
                leftovers.append(f"mounts {mounts_under(root)}")
        return leftovers


@pytest.fixture
async def isolated():
    if CANNOT_ISOLATE:
        pytest.skip(f"cannot isolate here: {CANNOT_ISOLATE}")
    box = Isolated(ExecDriver())
    yield box
    leftovers = await box.teardown()
    assert not leftovers, f"left behind: {leftovers}"


def read_log(cfg: TaskConfig, stream: str = "stdout") -> str:
    path = f"{cfg.stdout_base if stream == 'stdout' else cfg.stderr_base}.0"
    return open(path).read() if os.path.exists(path) else ""


# ---- pure parts ---------------------------------------------------------------------------------

MOUNTINFO = """\
24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 24 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 24 0:30 / /sys/fs/cgroup/cpu\\040acct rw,relatime - cgroup cgroup rw,cpuacct
40 24 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_mountinfo_lists_cgroup_mounts_with_their_controllers():
    mounts = parse_mountinfo(MOUNTINFO)
    assert ("/sys/fs/cgroup/memory", "cgroup", {"rw", "memory"}) in mounts
    assert ("/sys/fs/cgroup/cpu acct", "cgroup", {"rw", "cpuacct"}) in mounts
    assert ("/sys/fs/cgroup/unified", "cgroup2", {"rw"}) in mounts
    assert len(mounts) == 4


def test_cpu_shares_convert_to_v2_weight():
    assert cpu_weight_from_shares(2) == 1
    assert cpu_weight_from_shares(1024) == 39
    assert cpu_weight_from_shares(262144) == 10000
    assert cpu_weight_from_shares(100) < cpu_weight_from_shares(500)


def test_memory_limit_is_memory_max_when_larger():
    assert CgroupLimits(memory_mb=64).limit_bytes == 64 << 20
    limits = CgroupLimits(memory_mb=64, memory_max_mb=128)
    assert limits.limit_bytes == 128 << 20 and limits.reservation_bytes == 64 << 20


def test_v2_cgroup_files_in_a_fake_hierarchy(tmp_path):
    cgroup = TaskCgroup(2, {"unified": str(tmp_path / "yurt" / "a1.web")})
    cgroup.create(CgroupLimits(memory_mb=100, memory_max_mb=200, cpu_shares=500))
    task = tmp_path / "yurt" / "a1.web"
    assert (task / "memory.max").read_text() == str(200 << 20)
    assert (task / "memory.low").read_text() == str(100 << 20)
    assert (task / "cpu.weight").read_text() == str(cpu_weight_from_shares(500))
    assert "+memory" in (tmp_path / "cgroup.subtree_control").read_text()
    assert "+cpu" in (tmp_path / "yurt" / "cgroup.subtree_control").read_text()
    (task / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroup.oom_kills() == 1
    assert TaskCgroup.from_state(cgroup.to_state()) == cgroup


def test_v1_oom_counter_is_read_from_oom_control(tmp_path):
    cgroup = TaskCgroup(1, {"memory": str(tmp_path / "m"), "cpu": str(tmp_path / "c")})
    os.makedirs(tmp_path / "m")
    (tmp_path / "m" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert cgroup.oom_kills() == 0
    (tmp_path / "m" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cgroup.oom_kills() == 2


def test_capabilities_default_add_drop_and_allow_list():
    assert effective_caps(None, None) == set(DEFAULT_CAPS)
    caps = effective_caps(["CAP_SYS_TIME"], ["chown"], allowed=DEFAULT_CAPS + ("sys_time",))
    assert "sys_time" in caps and "chown" not in caps
    assert effective_caps(["kill"], ["all"]) == {"kill"}
    with pytest.raises(ValueError, match="sys_admin"):
        effective_caps(["sys_admin"], None)
    assert unknown_caps(["net_raw", "CAP_BOGUS", "all"]) == ["CAP_BOGUS"]
    assert cap_numbers({"chown", "kill"}) == [NUMBERS["chown"], NUMBERS["kill"]] == [0, 5]
