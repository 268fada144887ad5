"""The exec driver on this machine: namespaces, chroot, user, cgroup limits, OOM, recovery, cleanup.

Every test that starts a task goes through the `isolated` fixture, which destroys the
tasks at teardown and fails the test if a cgroup, mount or process is left behind.
"""

import asyncio
import os
import subprocess
import uuid

import pytest

from yurt.drivers.base import DriverError, TaskHandle
from yurt.drivers.exec import ExecDriver, isolation_unavailable, task_limits
from yurt.drivers.exec.capabilities import DEFAULT_CAPS, cap_numbers
from yurt.drivers.exec.cgroups import cpu_weight_from_shares
from yurt.drivers.exec.chroot import mounts_under

from test_isolation_support import isolated, read_log  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(90)


def sh(script: str, **config) -> dict:
    return {"command": "/bin/sh", "args": ["-c", script], **config}


def limits_env(cfg, memory: int, memory_max: int = 0, cpu: int = 100):
    cfg.env.update(NOMAD_MEMORY_LIMIT=str(memory), NOMAD_CPU_LIMIT=str(cpu))
    if memory_max:
        cfg.env["NOMAD_MEMORY_MAX_LIMIT"] = str(memory_max)
    return cfg


# ---- without starting a task --------------------------------------------------------------------

def test_fingerprint_is_healthy_only_when_root_with_namespaces_and_cgroups(monkeypatch):
    fp = ExecDriver().fingerprint()
    assert (fp.attributes.get("driver.exec") == "1") == (isolation_unavailable() == "")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    fp = ExecDriver().fingerprint()
    assert not fp.detected and "driver.exec" not in fp.attributes and "root" in fp.health_description


def test_validate_config_names_unknown_and_mistyped_keys():
    driver = ExecDriver()
    assert driver.validate_config(sh("true")) == []
    errors = driver.validate_config({"command": "x", "args": "not-a-list", "bogus": 1, "pid_mode": "shared"})
    assert any('"args"' in e for e in errors)
    assert any('"bogus"' in e for e in errors)
    assert any('"pid_mode"' in e and "shared" in e for e in errors)
    assert any('"command"' in e for e in driver.validate_config({"args": []}))
    assert any('"cap_add"' in e and "sys_admin" in e for e in driver.validate_config(sh("true", cap_add=["sys_admin"])))
    assert any("CAP_NOPE" in e for e in driver.validate_config(sh("true", cap_drop=["CAP_NOPE"])))


def test_limits_come_from_the_task_env(make_task):
    cfg = limits_env(make_task(sh("true")), memory=64, memory_max=128, cpu=250)
    limits = task_limits(cfg)
    assert (limits.memory_mb, limits.memory_max_mb, limits.cpu_shares) == (64, 128, 250)
    cfg.memory_mb, cfg.cpu_shares = 32, 500  # the allocated resources the client passes win
    assert (task_limits(cfg).memory_mb, task_limits(cfg).cpu_shares) == (32, 500)
    cfg = limits_env(make_task(sh("true")), memory=0, cpu=0)  # a task without resources: Nomad's defaults
    limits = task_limits(cfg)
    assert (limits.memory_mb, limits.memory_max_mb, limits.cpu_shares) == (300, 0, 100)


# ---- isolation ----------------------------------------------------------------------------------

async def test_task_sees_only_its_own_processes(isolated, make_task):
    cfg = make_task(sh("ps -e -o pid=,comm=; echo ---; ls /proc | grep -c '^[0-9]*$'"))
    handle, result = await isolated.run(cfg)
    assert result.exit_code == 0, read_log(cfg, "stderr")
    listing, count = read_log(cfg).split("---\n")
    rows = [line.split() for line in listing.strip().splitlines()]
    assert len(rows) == 3, rows  # the namespace's init (pid 1), the task's sh (pid 2) and ps
    assert rows[0][0] == "1" and rows[0][1].startswith("python") and rows[1] == ["2", "sh"] and rows[2][1] == "ps"
    assert int(count) <= 4  # init, sh, and the pipeline (ls, grep) at the count
    assert len([p for p in os.listdir("/proc") if p.isdigit()]) > 10  # the host has many more


async def test_host_root_cannot_be_read_as_nobody_or_as_root(isolated, make_task):
    secret = f"/root/yurt-exec-test-{uuid.uuid4().hex}"
    with open(secret, "w") as f:
        f.write("top secret\n")
    try:
        for user in ("", "root"):
            cfg = make_task(sh(f"cat {secret}; ls /root; id -un"))
            cfg.user = user
            _, result = await isolated.run(cfg)
            assert "top secret" not in read_log(cfg)
            assert read_log(cfg).strip() == (user or "nobody")
            assert "No such file" in read_log(cfg, "stderr")
    finally:
        os.unlink(secret)


async def test_task_runs_as_nobody_by_default(isolated, make_task):
    cfg = make_task(sh("id -u; id -g; id -un; touch /local/written && echo ok"))
    _, result = await isolated.run(cfg)
    assert result.exit_code == 0, read_log(cfg, "stderr")
    assert read_log(cfg).split() == ["65534", "65534", "nobody", "ok"]
    assert os.stat(os.path.join(cfg.task_dir, "local", "written")).st_uid == 65534
    for name in ("local", "secrets", "tmp"):  # the task user owns its directories
        assert os.stat(os.path.join(cfg.task_dir, name)).st_uid == 65534, name


async def test_chroot_layout_and_read_only_host_directories(isolated, make_task):
    script = "ls /; echo ---; touch /usr/x 2>&1; touch /alloc/logs/hi && echo alloc-ok; echo $PWD"
    cfg = make_task(sh(script))
    cfg.user = "root"
    _, result = await isolated.run(cfg)
    listing, rest = read_log(cfg).split("---\n")
    assert {"alloc", "local", "secrets", "tmp", "proc", "dev", "usr", "etc", "bin"} <= set(listing.split())
    assert "root" not in listing.split() and "home" not in listing.split()
    assert "Read-only file system" in rest
    assert "alloc-ok" in rest and os.path.exists(os.path.join(cfg.alloc_dir, "alloc", "logs", "hi"))
    assert rest.strip().endswith("/")


async def test_namespaces_differ_from_the_host_and_pid_mode_host_shares(isolated, make_task):
    names = ("pid", "mnt", "ipc", "uts")
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in names)
    host = [os.readlink(f"/proc/self/ns/{n}") for n in names]
    cfg = make_task(sh(script))
    await isolated.run(cfg)
    inside = read_log(cfg).split()
    assert all(a != b for a, b in zip(inside, host)), (inside, host)
    cfg = make_task(sh(script, pid_mode="host", ipc_mode="host"))
    await isolated.run(cfg)
    inside = read_log(cfg).split()
    assert inside[0] == host[0] and inside[2] == host[2]
    assert inside[1] != host[1] and inside[3] != host[3]


async def test_bounding_set_holds_the_allowed_capabilities(isolated, make_task):
    cfg = make_task(sh("grep CapBnd /proc/self/status", cap_drop=["chown"]))
    cfg.user = "root"
    await isolated.run(cfg)
    mask = int(read_log(cfg).split()[1], 16)
    expected = set(DEFAULT_CAPS) - {"chown"}
    assert mask == sum(1 << n for n in cap_numbers(expected))


# ---- cgroup limits ------------------------------------------------------------------------------

def _cgroup_file(handle: TaskHandle, v1: tuple[str, str], v2: str) -> str:
    state = handle.state["cgroup"]
    if state["version"] == 2:
        return open(os.path.join(state["paths"]["unified"], v2)).read().strip()
    return open(os.path.join(state["paths"][v1[0]], v1[1])).read().strip()


async def test_memory_limit_and_cpu_weight_are_written_to_the_task_cgroup(isolated, make_task):
    cfg = limits_env(make_task(sh("exec sleep 30")), memory=48, memory_max=96, cpu=750)
    handle = await isolated.start(cfg)
    assert _cgroup_file(handle, ("memory", "memory.limit_in_bytes"), "memory.max") == str(96 << 20)
    assert _cgroup_file(handle, ("memory", "memory.soft_limit_in_bytes"), "memory.low") == str(48 << 20)
    assert _cgroup_file(handle, ("cpu", "cpu.shares"), "cpu.weight") in ("750", str(cpu_weight_from_shares(750)))
    pids = isolated.driver.task_pids(handle)  # the task's processes: sleep, not launcher and init
    assert len(pids) == 1 and pids[0] not in (handle.pid, handle.state["init_pid"])
    for _ in range(250):  # the shell may not have exec'd sleep yet
        with open(f"/proc/{pids[0]}/cmdline") as f:
            command = f.read().split("\0")[0]
        if command == "sleep":
            break
        await asyncio.sleep(0.02)
    assert command == "sleep"
    await isolated.driver.stop_task(handle, 2_000_000_000, "SIGTERM")


async def test_task_over_its_memory_limit_is_oom_killed(isolated, make_task):
    cfg = limits_env(make_task(sh("exec dd if=/dev/zero of=/dev/null bs=160M count=1")), memory=40)
    _, result = await isolated.run(cfg)
    assert result.oom_killed, (result, read_log(cfg, "stderr"))
    assert result.signal == 9 and not result.successful


async def test_oom_kill_of_a_child_process_is_reported_too(isolated, make_task):
    cfg = limits_env(make_task(sh("dd if=/dev/zero of=/dev/null bs=160M count=1; exit 3")), memory=40)
    _, result = await isolated.run(cfg)
    assert result.oom_killed and result.exit_code == 3, result


async def test_task_under_its_memory_limit_is_not_oom_killed(isolated, make_task):
    cfg = limits_env(make_task(sh("dd if=/dev/zero of=/dev/null bs=8M count=4")), memory=64)
    _, result = await isolated.run(cfg)
    assert result.successful and not result.oom_killed, read_log(cfg, "stderr")


# ---- lifecycle ----------------------------------------------------------------------------------

async def test_missing_binary_is_a_start_error_and_leaves_nothing(isolated, make_task):
    cfg = make_task({"command": "/no/such/binary"})
    with pytest.raises(DriverError, match="failed to start task.*/no/such/binary"):
        await isolated.start(cfg)
    assert not os.path.exists(f"/sys/fs/cgroup/memory/yurt/{cfg.alloc_id}.{cfg.task_name}")
    assert not os.path.isdir(os.path.join(cfg.task_dir, "usr"))


async def test_stop_forwards_the_kill_signal_to_the_task(isolated, make_task):
    cfg = make_task(sh("trap 'echo got-term; exit 7' TERM; while true; do sleep 0.1; done"))
    handle = await isolated.start(cfg)
    await asyncio.sleep(0.3)
    await isolated.driver.stop_task(handle, 5_000_000_000, "SIGTERM")
    result = await asyncio.wait_for(isolated.driver.wait_task(handle), 10)
    assert result.exit_code == 7 and "got-term" in read_log(cfg)


async def test_recover_after_simulated_agent_restart_keeps_the_same_processes(isolated, make_task):
    cfg = make_task(sh("sleep 30"))
    handle = await isolated.start(cfg)
    pids_before = isolated.driver.task_pids(handle)
    stored = TaskHandle.from_dict(handle.to_dict())
    fresh = ExecDriver()  # the new agent's driver
    await fresh.recover_task(stored)
    assert fresh.inspect_task(stored).state == "running"
    assert stored.pid == handle.pid and fresh.task_pids(stored) == pids_before
    await fresh.stop_task(stored, 2_000_000_000, "SIGTERM")
    result = await asyncio.wait_for(fresh.wait_task(stored), 10)
    assert result.signal == 15
    await fresh.destroy_task(stored)
    assert not os.path.exists(stored.state["cgroup"]["paths"].get("memory", stored.state["cgroup"]["paths"].get("unified")))


async def test_destroy_removes_cgroup_and_chroot_but_keeps_task_data(isolated, make_task):
    cfg = make_task(sh("echo data > /local/keep; sleep 30"))
    handle = await isolated.start(cfg)
    await asyncio.sleep(0.3)
    with pytest.raises(DriverError):
        await isolated.driver.destroy_task(handle)  # still running
    await isolated.driver.destroy_task(handle, force=True)
    paths = handle.state["cgroup"]["paths"].values()
    assert not any(os.path.exists(p) for p in paths)
    assert mounts_under(cfg.task_dir) == []
    left = set(os.listdir(cfg.task_dir))
    assert not left & {"usr", "etc", "bin", "proc", "dev", "alloc", "lib"}, left
    assert open(os.path.join(cfg.task_dir, "local", "keep")).read() == "data\n"


async def test_unknown_user_is_a_start_error_naming_the_user(isolated, make_task):
    cfg = make_task(sh("true"))
    cfg.user = "no-such-user-here"
    with pytest.raises(DriverError, match='user "no-such-user-here" not found'):
        await isolated.start(cfg)


async def test_relative_command_and_work_dir_inside_the_chroot(isolated, make_task):
    cfg = make_task({"command": "local/run.sh", "args": ["a b"], "work_dir": "/local"})
    script = os.path.join(cfg.task_dir, "local", "run.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\necho "$PWD [$1]"\n')
    os.chmod(script, 0o755)
    _, result = await isolated.run(cfg)
    assert result.exit_code == 0, read_log(cfg, "stderr")
    assert read_log(cfg) == "/local [a b]\n"


async def test_signal_task_reaches_the_task_once(isolated, make_task):
    cfg = make_task(sh("n=0; trap 'n=$((n+1)); echo hup $n' HUP; trap 'exit 0' USR1; while true; do sleep 0.05; done"))
    handle = await isolated.start(cfg)
    await asyncio.sleep(0.3)
    await isolated.driver.signal_task(handle, "SIGHUP")
    await asyncio.sleep(0.3)
    await isolated.driver.signal_task(handle, "SIGUSR1")
    result = await asyncio.wait_for(isolated.driver.wait_task(handle), 10)
    assert result.exit_code == 0 and read_log(cfg) == "hup 1\n"


async def test_destroy_kills_what_escaped_the_task_with_pid_mode_host(isolated, make_task):
    cfg = make_task(sh("setsid sleep 300 </dev/null >/dev/null 2>&1 & sleep 0.2; exit 0", pid_mode="host"))
    handle, result = await isolated.run(cfg)
    assert result.successful
    escaped = isolated.driver.task_pids(handle)
    assert escaped and all(os.path.exists(f"/proc/{pid}") for pid in escaped)  # the setsid'd sleep lives on
    await isolated.driver.destroy_task(handle)
    await asyncio.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
                   for pid in escaped)


async def test_the_namespace_ends_with_the_task_in_the_default_pid_mode(isolated, make_task):
    cfg = make_task(sh("setsid sleep 300 </dev/null >/dev/null 2>&1 & sleep 0.2; exit 0"))
    handle, result = await isolated.run(cfg)
    assert result.successful
    for _ in range(50):
        if not isolated.driver.task_pids(handle) or isolated.driver.task_pids(handle) == [handle.pid]:
            break
        await asyncio.sleep(0.05)
    assert isolated.driver.task_pids(handle) == [handle.pid]  # nothing left in the cgroup (fallback pid)


async def test_a_restarted_task_is_not_reported_oom_killed_for_an_earlier_run(isolated, make_task):
    hog = limits_env(make_task(sh("exec dd if=/dev/zero of=/dev/null bs=160M count=1")), memory=40)
    _, first = await isolated.run(hog)
    assert first.oom_killed
    again = limits_env(make_task(sh("exit 3")), memory=40)
    again.alloc_id, again.task_dir, again.alloc_dir, again.log_dir = hog.alloc_id, hog.task_dir, hog.alloc_dir, hog.log_dir
    _, second = await isolated.run(again)  # the same task, same cgroup, started again
    assert second.exit_code == 3 and not second.oom_killed


async def test_exec_argv_runs_a_command_inside_the_running_task(isolated, make_task):
    cfg = make_task(sh("echo hello > /local/greeting; exec sleep 30"))
    handle = await isolated.start(cfg)
    await asyncio.sleep(0.3)
    script = "id -un; cat /local/greeting; grep -c yurt/ /proc/self/cgroup; ps -e -o comm= | sort"
    argv = isolated.driver.exec_argv(handle, ["/bin/sh", "-c", script])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[:2] == ["nobody", "hello"]
    assert int(lines[2]) == len(handle.state["cgroup"]["paths"])  # in the task's cgroup(s)
    assert "sleep" in lines and "pytest" not in " ".join(lines) and len(lines) <= 8
    await isolated.driver.stop_task(handle, 1_000_000_000, "SIGKILL")
    await isolated.driver.wait_task(handle)
    with pytest.raises(DriverError):
        isolated.driver.exec_argv(handle, ["true"])


async def test_the_task_does_not_outlive_a_killed_launcher(isolated, make_task):
    cfg = make_task(sh("exec sleep 30"))
    handle = await isolated.start(cfg)
    task_pid = isolated.driver.task_pids(handle)[0]
    os.kill(handle.pid, 9)  # the launcher, not through the supervisor
    result = await asyncio.wait_for(isolated.driver.wait_task(handle), 10)
    assert result.signal == 9
    for _ in range(100):
        if not os.path.exists(f"/proc/{task_pid}") or open(f"/proc/{task_pid}/stat").read().split()[2] == "Z":
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"task process {task_pid} outlived its launcher")


def test_denied_host_id_ranges_parse_and_name_the_option():
    from yurt.drivers.exec.driver import parse_id_ranges

    assert parse_id_ranges("0, 10-12", "denied_host_uids") == {0, 10, 11, 12}
    assert parse_id_ranges("", "denied_host_uids") == set()
    with pytest.raises(ValueError, match='denied_host_gids: invalid id range "5-2"'):
        parse_id_ranges("5-2", "denied_host_gids")
    with pytest.raises(ValueError, match='denied_host_uids: invalid id range "x"'):
        ExecDriver(denied_host_uids="x")


async def test_denied_host_uid_refuses_the_task_user(isolated, make_task):
    isolated.driver = ExecDriver(denied_host_uids="0-10")
    cfg = make_task(sh("true"))
    cfg.user = "root"
    with pytest.raises(DriverError, match="uid 0 .*denied_host_uids"):
        await isolated.start(cfg)
    _, result = await isolated.run(make_task(sh("id -u")))  # nobody (65534) is allowed
    assert result.successful


def test_host_paths_translate_to_chroot_paths():
    from yurt.drivers.exec.driver import chroot_path

    task, shared = "/data/alloc/a1/web", "/data/alloc/a1/alloc"
    assert chroot_path("/data/alloc/a1/web/local", task, shared) == "/local"
    assert chroot_path("/data/alloc/a1/web/secrets/token", task, shared) == "/secrets/token"
    assert chroot_path("/data/alloc/a1/alloc", task, shared) == "/alloc"
    assert chroot_path("/data/alloc/a1/alloc/data/x", task, shared) == "/alloc/data/x"
    assert chroot_path("/data/alloc/a1/webby", task, shared) == "/data/alloc/a1/webby"
    assert chroot_path("hello", task, shared) == "hello"


async def test_task_env_and_args_see_chroot_paths(isolated, make_task):
    cfg = make_task({"command": "/bin/sh", "args": ["-c", 'echo "$NOMAD_TASK_DIR $NOMAD_ALLOC_DIR $1"', "sh", ""]})
    cfg.config["args"][3] = os.path.join(cfg.task_dir, "local", "file")  # as ${NOMAD_TASK_DIR}/file interpolates
    cfg.env.update(NOMAD_TASK_DIR=os.path.join(cfg.task_dir, "local"), NOMAD_ALLOC_DIR=os.path.join(cfg.alloc_dir, "alloc"))
    _, result = await isolated.run(cfg)
    assert result.successful, read_log(cfg, "stderr")
    assert read_log(cfg) == "/local /alloc /local/file\n"


async def test_exec_streaming_runs_inside_the_task_and_without_setsid_in_the_chroot(isolated, make_task, monkeypatch):
    from yurt.drivers.base import ExecInput
    import yurt.drivers.exec.driver as exec_driver

    handle = await isolated.start(make_task(sh("echo hello > /local/greeting; exec sleep 30")))
    out = {"stdout": b"", "stderr": b""}

    async def output(stream, data):
        out[stream] += data

    async def inputs(*messages):
        for message in messages:
            yield message

    script = "id -un; cat /local/greeting; ps -e -o comm= | grep -c sleep"
    code = await isolated.driver.exec_streaming(handle, ["/bin/sh", "-c", script], False, inputs(), output)
    assert code == 0 and out["stdout"].split() == [b"nobody", b"hello", b"1"], out  # its user, chroot, pid ns
    monkeypatch.setattr(exec_driver, "_chroot_has", lambda root, program: False)
    out["stdout"] = b""
    code = await isolated.driver.exec_streaming(
        handle, ["/bin/sh", "-c", "read go; stty size; exit 3"], True,
        inputs(ExecInput(tty_size=(40, 100)), ExecInput(data=b"go\n")), output)
    assert code == 3 and b"40 100" in out["stdout"], out  # a pty still, held by the session outside
    await isolated.driver.stop_task(handle, 1_000_000_000, "SIGKILL")
    await isolated.driver.wait_task(handle)
