"""cgroup v2 for the exec driver: controller detection and enabling, the v1 fallback with its
log line (fake hierarchies), and a real memory-limit kill on the machine's v2 hierarchy when its
memory and cpu controllers can be enabled (on hosts whose controllers sit on v1, it is skipped
with the reason)."""

import logging

import pytest

from yurt.drivers.exec import cgroups
from yurt.drivers.exec.cgroups import (
    CgroupLimits,
    TaskCgroup,
    cpu_weight_from_shares,
    detect_layout,
    enable_v2_controllers,
)

from test_isolation_support import isolated, read_log  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(90)


def fake_v2(root, controllers="cpuset cpu io memory pids", enabled=""):
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text(enabled + "\n")
    return root


def mountinfo(tmp_path, v2_root, v1_roots=None):
    lines = [f"41 31 0:38 / {v2_root} rw,relatime - cgroup2 cgroup2 rw"]
    for i, (controller, path) in enumerate((v1_roots or {}).items()):
        path.mkdir(parents=True, exist_ok=True)
        lines.append(f"{50 + i} 31 0:{50 + i} / {path} rw,relatime - cgroup cgroup rw,{controller}")
    info = tmp_path / "mountinfo"
    info.write_text("\n".join(lines) + "\n")
    return str(info)


@pytest.fixture(autouse=True)
def fresh_log_memory(monkeypatch):
    monkeypatch.setattr(cgroups, "_logged", set())


def test_v2_with_controllers_is_chosen_and_they_are_enabled(tmp_path):
    root = fake_v2(tmp_path / "unified")
    layout = detect_layout(mountinfo(tmp_path, root))
    assert layout.version == 2 and layout.roots == {"unified": str(root)}
    assert (root / "cgroup.subtree_control").read_text() == "+memory +cpu"


def test_already_enabled_controllers_are_left_alone(tmp_path):
    root = fake_v2(tmp_path / "unified", enabled="cpu memory")
    assert enable_v2_controllers(str(root)) == ""
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory\n"


def test_v2_without_memory_and_cpu_falls_back_to_v1_with_a_log_line(tmp_path, caplog):
    root = fake_v2(tmp_path / "unified", controllers="hugetlb")
    info = mountinfo(tmp_path, root, {"memory": tmp_path / "v1mem", "cpu": tmp_path / "v1cpu"})
    with caplog.at_level(logging.INFO, logger="yurt.drivers.exec.cgroups"):
        layout = detect_layout(info)
        detect_layout(info)
    assert layout.version == 1 and layout.roots == {"memory": str(tmp_path / "v1mem"), "cpu": str(tmp_path / "v1cpu")}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"exec: cgroup v2 at {root} lacks the cpu, memory controller(s) (available: hugetlb); "
                        "using the cgroup v1 memory and cpu hierarchies"]  # once, not on every task start


def test_enabling_failure_is_reported(tmp_path):
    root = fake_v2(tmp_path / "unified")
    (root / "cgroup.subtree_control").unlink()
    (root / "cgroup.subtree_control").mkdir()  # writing fails, as the kernel refuses
    problem = enable_v2_controllers(str(root))
    assert problem.startswith(f"cannot enable the memory, cpu controller(s) in {root}/cgroup.subtree_control")
    assert detect_layout(mountinfo(tmp_path, root)) is None


def test_v2_task_cgroup_limits_and_oom_counter(tmp_path):
    cgroup = TaskCgroup(2, {"unified": str(tmp_path / "yurt" / "a1.web")})
    cgroup.create(CgroupLimits(memory_mb=100, memory_max_mb=300, cpu_shares=1024))
    task = tmp_path / "yurt" / "a1.web"
    assert (task / "memory.max").read_text() == str(300 << 20)  # memory_max is the hard limit
    assert (task / "memory.low").read_text() == str(100 << 20)  # memory the protected reservation
    assert (task / "cpu.weight").read_text() == str(cpu_weight_from_shares(1024)) == "39"
    (task / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    assert cgroup.oom_kills() == 2


def _real_v2_problem() -> str:
    layout = detect_layout()
    if layout is not None and layout.version == 2:
        return ""
    for point, fstype, _ in cgroups.parse_mountinfo(open("/proc/self/mountinfo").read()):
        if fstype == "cgroup2":
            return enable_v2_controllers(point) or "v2 not chosen"
    return "no cgroup v2 hierarchy is mounted"


async def test_real_v2_memory_limit_kill(isolated, make_task):
    problem = _real_v2_problem()
    if problem:
        pytest.skip(f"this machine cannot use cgroup v2 for memory and cpu: {problem}")
    cfg = make_task({"command": "/bin/sh", "args": ["-c", "exec dd if=/dev/zero of=/dev/null bs=160M count=1"]})
    cfg.env.update(NOMAD_MEMORY_LIMIT="40", NOMAD_CPU_LIMIT="100")
    handle, result = await isolated.run(cfg)
    assert handle.state["cgroup"]["version"] == 2
    assert result.oom_killed and result.err == "OOM Killed", (result, read_log(cfg, "stderr"))


async def test_exec_task_stats_come_from_its_real_cgroup(isolated, make_task):
    """Whatever hierarchy this machine gives (v1 here), the task's memory figures are the cgroup's."""
    from yurt.client.stats import resource_usage

    cfg = make_task({"command": "/bin/sh", "args": ["-c", "exec sleep 30"]})
    cfg.env.update(NOMAD_MEMORY_LIMIT="64", NOMAD_CPU_LIMIT="100")
    handle = await isolated.start(cfg)
    cgroup = TaskCgroup.from_state(handle.state["cgroup"])
    usage = resource_usage(isolated.driver.task_pids(handle), 4000, cgroup, key="exec-stats")
    mem = usage["MemoryStats"]
    assert mem["Usage"] > 0 and mem["MaxUsage"] >= mem["Usage"], mem
    assert {"RSS", "Usage", "Max Usage"} <= set(mem["Measured"])
    await isolated.driver.stop_task(handle, 1_000_000_000, "SIGKILL")
