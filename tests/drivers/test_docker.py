"""The docker driver against a real engine (skipped, with the reason, when none answers).

`scripts/ci-docker` starts an engine and builds the busybox test image; the image is also
imported here if missing. Every container a test creates is removed at teardown.
"""

import asyncio
import os
import socket
import time
import urllib.request
import uuid

import pytest

pytest.importorskip("docker", reason="the docker SDK is not installed (pip install docker==7.1.0)")

from yurt.drivers.base import DriverError, TaskHandle  # noqa: E402
from yurt.drivers.docker import DockerDriver, DockerPluginConfig, reap_orphans, validate_task_config  # noqa: E402
from yurt.drivers.docker.driver import connect, exit_result_from_state  # noqa: E402
from yurt.drivers.docker.spec import LABEL_ALLOC_ID, build_container_spec, memory_limits, port_bindings  # noqa: E402

from docker_image import TEST_IMAGE, ensure_test_image  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _engine():
    try:
        client = connect(timeout=5)
        client.ping()
        return client, ""
    except Exception as exc:
        return None, f"no Docker engine answers ({type(exc).__name__}: {exc}); run scripts/ci-docker"


@pytest.fixture(scope="module")
def engine():
    client, reason = _engine()
    if client is None:
        pytest.skip(reason)
    ensure_test_image(client)
    yield client
    client.close()


@pytest.fixture
def docker_task(engine, make_task):
    """make_task for docker: tracks alloc IDs and removes their containers at teardown."""
    alloc_ids: list[str] = []

    def make(config: dict, **kwargs):
        cfg = make_task({"image": TEST_IMAGE, **config}, **kwargs)
        cfg.env["NOMAD_JOB_NAME"] = "example"
        cfg.memory_mb, cfg.cpu_shares = 64, 250
        alloc_ids.append(cfg.alloc_id)
        return cfg

    yield make
    for container in engine.containers(all=True, filters={"label": [LABEL_ALLOC_ID]}):
        if container["Labels"].get(LABEL_ALLOC_ID) in alloc_ids:
            engine.remove_container(container["Id"], force=True, v=True)


def read_log(cfg, stream: str = "stdout") -> str:
    path = f"{cfg.log_dir}/{cfg.task_name}.{stream}.0"
    return open(path).read() if os.path.exists(path) else ""


async def wait_for_log(cfg, text: str, stream: str = "stdout", timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = read_log(cfg, stream)
        if text in content:
            return content
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in {stream} log: {read_log(cfg, stream)!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- pure: no engine -----------------------------------------------------------------


def test_validate_config_names_unknown_and_mistyped_keys():
    errors = validate_task_config({"image": "x", "imgae": "y", "args": "not-a-list", "mount": [{"typo": 1}]})
    assert any('"imgae"' in e for e in errors)
    assert any('"args"' in e for e in errors)
    assert any('"mount[0].typo"' in e for e in errors)
    assert any("image" in e for e in validate_task_config({}))
    assert validate_task_config({"image": "x", "ports": ["http"], "init": True}) == []


def test_spec_maps_ports_memory_and_dirs(make_task):
    cfg = make_task({"image": "img", "ports": ["http"], "memory_hard_limit": 256, "volumes": ["data:/data"]})
    cfg.env.update({"NOMAD_HOST_PORT_http": "23456", "NOMAD_PORT_http": "80", "NOMAD_HOST_IP_http": "127.0.0.1",
                    "NOMAD_MEMORY_LIMIT": "128"})
    exposed, bindings = port_bindings(cfg)
    assert (80, "tcp") in exposed and bindings["80/tcp"] == [("127.0.0.1", 23456)]
    assert memory_limits(cfg) == {"mem_limit": 256 << 20, "mem_reservation": 128 << 20, "memswap_limit": 256 << 20}
    spec = build_container_spec(cfg, DockerPluginConfig(), "img:latest")
    binds = spec.host_config["binds"]
    assert f"{cfg.alloc_dir}/alloc:/alloc" in binds and f"{cfg.task_dir}/local:/local" in binds
    assert f"{cfg.task_dir}/data:/data" in binds
    assert spec.create["environment"]["NOMAD_TASK_DIR"] == "/local"
    assert "PATH" not in spec.create["environment"]  # the client's own env stays outside


def test_spec_refuses_privileged_and_unknown_ports(make_task):
    with pytest.raises(DriverError, match="privileged"):
        build_container_spec(make_task({"image": "i", "privileged": True}), DockerPluginConfig(), "i")
    build_container_spec(make_task({"image": "i", "privileged": True}), DockerPluginConfig(allow_privileged=True), "i")
    with pytest.raises(DriverError, match='Port "web"'):
        build_container_spec(make_task({"image": "i", "ports": ["web"]}), DockerPluginConfig(), "i")
    with pytest.raises(DriverError, match="volumes enabled"):
        build_container_spec(make_task({"image": "i", "volumes": ["/etc:/x"]}), DockerPluginConfig(), "i")


def test_mount_blocks_and_their_limits(make_task):
    from yurt.drivers.docker.spec import task_mounts

    cfg = make_task({"image": "i", "mount": [
        {"type": "bind", "source": "local/conf", "target": "/etc/app", "readonly": True},
        {"type": "volume", "source": "cache", "target": "/cache", "volume_options": {"no_copy": True}},
        {"type": "tmpfs", "target": "/run", "tmpfs_options": {"size": 4096, "mode": 0o700}},
    ]})
    bind, volume, tmpfs = task_mounts(cfg, DockerPluginConfig())
    assert bind["Source"] == f"{cfg.task_dir}/local/conf" and bind["ReadOnly"] is True and bind["Type"] == "bind"
    assert volume["Source"] == "cache" and volume["VolumeOptions"]["NoCopy"] is True
    assert tmpfs["TmpfsOptions"] == {"SizeBytes": 4096, "Mode": 0o700}
    escaping = make_task({"image": "i", "mount": {"type": "bind", "source": "../../../etc", "target": "/x"}})
    with pytest.raises(DriverError, match="escapes the allocation directory"):
        task_mounts(escaping, DockerPluginConfig())
    assert task_mounts(escaping, DockerPluginConfig(volumes_enabled=True))[0]["Target"] == "/x"
    driver = make_task({"image": "i", "mount": {"target": "/v", "volume_options": {"driver_config": {"name": "nfs"}}}})
    with pytest.raises(DriverError, match="volume drivers"):
        task_mounts(driver, DockerPluginConfig())


def test_exit_code_above_128_is_a_signal_only_when_stopped():
    assert exit_result_from_state({"ExitCode": 143}, stop_requested=True).signal == 15
    assert exit_result_from_state({"ExitCode": 143}, stop_requested=False).signal == 0
    oom = exit_result_from_state({"ExitCode": 137, "OOMKilled": True}, stop_requested=False)
    assert oom.oom_killed and oom.signal == 9 and "OOM" in oom.err


# -- against the engine ------------------------------------------------------------------


async def test_output_reaches_the_log_files_and_exit_code(engine, docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "echo out-line; echo err-line >&2; exit 3"]})
    handle = await driver.start_task(cfg)
    result = await asyncio.wait_for(driver.wait_task(handle), 20)
    assert result.exit_code == 3 and result.signal == 0
    await wait_for_log(cfg, "out-line\n")
    await wait_for_log(cfg, "err-line\n", "stderr")
    await driver.destroy_task(handle)
    assert not engine.containers(all=True, filters={"id": handle.state["container_id"]})
    assert (await driver.wait_task(handle)).exit_code == 3  # still answered after removal


async def test_stop_honours_kill_timeout(docker_task):
    driver = DockerDriver()
    script = "trap 'echo got-term' TERM; while true; do sleep 0.1; done"
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", script]})
    handle = await driver.start_task(cfg)
    await asyncio.sleep(0.5)
    start = time.monotonic()
    await driver.stop_task(handle, 1_500_000_000, "SIGTERM")
    elapsed = time.monotonic() - start
    result = await driver.wait_task(handle)
    assert 1.4 <= elapsed < 6, elapsed
    assert result.exit_code == 137 and result.signal == 9
    await wait_for_log(cfg, "got-term")
    deadline = time.monotonic() + 10  # a stopped task's container is removed (in the background)
    while time.monotonic() < deadline and driver._inspect(handle) is not None:
        await asyncio.sleep(0.1)
    assert driver._inspect(handle) is None
    assert (await driver.wait_task(handle)).exit_code == 137 and driver.inspect_task(handle).state == "exited"
    await driver.destroy_task(handle)


async def test_env_labels_and_task_dirs(engine, docker_task):
    driver = DockerDriver()
    cfg = docker_task({
        "command": "/bin/sh",
        "args": ["-c", "echo GREETING=$GREETING; echo dir=$NOMAD_TASK_DIR; echo hi > /alloc/shared.txt; ls /local /secrets"],
        "labels": {"team": "infra"},
    })
    cfg.env["GREETING"] = "hello"
    handle = await driver.start_task(cfg)
    labels = engine.inspect_container(handle.state["container_id"])["Config"]["Labels"]
    assert labels["team"] == "infra"
    assert labels["com.hashicorp.nomad.alloc_id"] == cfg.alloc_id
    assert labels["com.hashicorp.nomad.task_name"] == "web"
    assert labels["com.hashicorp.nomad.job_name"] == "example"
    assert (await driver.wait_task(handle)).exit_code == 0
    await wait_for_log(cfg, "GREETING=hello\ndir=/local\n")
    assert open(os.path.join(cfg.alloc_dir, "alloc", "shared.txt")).read() == "hi\n"
    await driver.destroy_task(handle)


async def test_port_mapping_answers_on_loopback(docker_task):
    driver = DockerDriver()
    port = free_port()
    cfg = docker_task({"command": "httpd", "args": ["-f", "-p", "8080", "-h", "/var/www"], "ports": ["http"]})
    cfg.env.update({"NOMAD_HOST_PORT_http": str(port), "NOMAD_PORT_http": "8080", "NOMAD_HOST_IP_http": "127.0.0.1"})
    handle = await driver.start_task(cfg)
    body, deadline = None, time.monotonic() + 10
    while body is None and time.monotonic() < deadline:
        try:
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read())
        except OSError:
            await asyncio.sleep(0.1)
    assert body == b"hello from yurt-test\n"
    await driver.stop_task(handle, 2_000_000_000, "SIGTERM")
    await driver.destroy_task(handle)


async def test_bind_volume_and_mounts(docker_task):
    driver = DockerDriver()
    cfg = docker_task({
        "command": "/bin/sh",
        "args": ["-c", "cat /data/in.txt; echo written > /data/out.txt; echo tmp > /scratch/t && cat /scratch/t"],
        "volumes": ["data:/data"],
        "mount": [{"type": "tmpfs", "target": "/scratch", "tmpfs_options": {"size": 1048576}}],
    })
    os.makedirs(os.path.join(cfg.task_dir, "data"))
    with open(os.path.join(cfg.task_dir, "data", "in.txt"), "w") as f:
        f.write("from-host\n")
    handle = await driver.start_task(cfg)
    assert (await driver.wait_task(handle)).exit_code == 0
    await wait_for_log(cfg, "from-host\ntmp\n")
    assert open(os.path.join(cfg.task_dir, "data", "out.txt")).read() == "written\n"
    await driver.destroy_task(handle)


async def test_memory_limit_and_cpu_shares_set_on_the_container(engine, docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "sleep", "args": ["30"], "memory_hard_limit": 96})
    handle = await driver.start_task(cfg)
    host_config = engine.inspect_container(handle.state["container_id"])["HostConfig"]
    assert host_config["Memory"] == 96 * 1024 * 1024
    assert host_config["MemoryReservation"] == 64 * 1024 * 1024
    assert host_config["CpuShares"] == 250
    import psutil

    assert "sleep" in {psutil.Process(pid).name() for pid in driver.task_pids(handle)}  # host pids, for stats
    stats = await asyncio.to_thread(driver.container_stats, handle)
    assert stats["memory_stats"]["limit"] == 96 * 1024 * 1024
    await driver.destroy_task(handle, force=True)


async def test_recover_by_container_id_after_agent_restart(engine, docker_task):
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "echo before; sleep 4; echo after; exit 5"]})
    handle = await DockerDriver().start_task(cfg)
    await wait_for_log(cfg, "before\n")
    stored = TaskHandle.from_dict(handle.to_dict())
    started_at = engine.inspect_container(handle.state["container_id"])["State"]["StartedAt"]
    fresh = DockerDriver()  # a new agent process's driver
    await fresh.recover_task(stored)
    assert fresh.inspect_task(stored).state == "running"
    result = await asyncio.wait_for(fresh.wait_task(stored), 20)
    assert result.exit_code == 5
    assert engine.inspect_container(handle.state["container_id"])["State"]["StartedAt"] == started_at  # not restarted
    await wait_for_log(cfg, "before\nafter\n")
    await fresh.destroy_task(stored)
    with pytest.raises(DriverError):
        await DockerDriver().recover_task(TaskHandle.from_dict({**handle.to_dict(), "state": {
            **handle.state, "container_id": "0" * 64, "state_dir": str(cfg.task_dir) + "/nowhere"}}))


async def test_logs_resume_when_the_follower_died(docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "echo one; sleep 1.5; echo two; sleep 30"]})
    handle = await driver.start_task(cfg)
    await wait_for_log(cfg, "one\n")
    positions = os.path.join(handle.state["state_dir"], "logpos.json")
    deadline = time.monotonic() + 5  # a line is recorded just after it is written (at-least-once)
    while time.monotonic() < deadline and not os.path.exists(positions):
        await asyncio.sleep(0.02)
    os.kill(driver._follower_pid(handle), 9)  # the follower dies (e.g. OOM) while the task runs
    await asyncio.sleep(2.0)
    fresh = DockerDriver()
    await fresh.recover_task(TaskHandle.from_dict(handle.to_dict()))
    assert await wait_for_log(cfg, "two\n") == "one\ntwo\n"  # nothing lost, nothing copied twice
    await fresh.destroy_task(handle, force=True)


async def test_orphan_reaping_removes_unknown_allocs_only(engine, docker_task):
    driver = DockerDriver()
    kept = docker_task({"command": "sleep", "args": ["30"]})
    orphan = docker_task({"command": "sleep", "args": ["30"]})
    kept_handle = await driver.start_task(kept)
    orphan_handle = await driver.start_task(orphan)
    alloc_root = os.path.dirname(kept.alloc_dir)  # both tasks' client data dir
    assert reap_orphans(engine, {kept.alloc_id}, alloc_root) == []  # too young: a start may be under way
    assert reap_orphans(engine, set(), alloc_root + "-other-client", creation_grace_s=0) == []
    removed = reap_orphans(engine, {kept.alloc_id}, alloc_root, creation_grace_s=0)
    assert removed == [orphan_handle.state["container_id"]]
    assert driver.inspect_task(kept_handle).state == "running"
    gone = await asyncio.wait_for(driver.wait_task(orphan_handle), 10)  # reported, not hung
    assert gone.exit_code == -1 and "gone" in gone.err
    await driver.destroy_task(kept_handle, force=True)


async def test_dangling_reconciler_removes_what_a_restarted_client_no_longer_runs(engine, docker_task):
    """Nomad's dangling-container reconciler: after a restart the new driver tracks only the tasks
    it recovered; a container of an alloc it does not run is removed, the recovered one stays."""
    kept = docker_task({"command": "sleep", "args": ["30"]})
    dangling = docker_task({"command": "sleep", "args": ["30"]})
    alloc_root = os.path.dirname(kept.alloc_dir)
    first = DockerDriver(alloc_root=alloc_root)
    kept_handle = await first.start_task(kept)
    dangling_handle = await first.start_task(dangling)
    assert first.reconcile_dangling() == []  # both tracked (and young)
    plugin = DockerPluginConfig(dangling_period_s=0.05, dangling_creation_grace_s=0.0)
    restarted = DockerDriver(plugin, alloc_root=alloc_root)  # the agent came back knowing only `kept`
    await restarted.recover_task(TaskHandle.from_dict(kept_handle.to_dict()))
    dry = DockerDriver(DockerPluginConfig(dangling_creation_grace_s=0.0, dangling_dry_run=True), alloc_root=alloc_root)
    await dry.recover_task(TaskHandle.from_dict(kept_handle.to_dict()))
    assert dry.reconcile_dangling() == [dangling_handle.state["container_id"]]  # dry run: only reported
    assert restarted.inspect_task(dangling_handle).state == "running"
    other_client = DockerDriver(plugin, alloc_root=alloc_root + "-elsewhere")
    assert other_client.reconcile_dangling() == []  # another client's containers are not its business
    task = restarted.start_dangling_reconciler()
    try:
        await asyncio.wait_for(restarted.wait_task(dangling_handle), 10)
        for _ in range(100):
            if not engine.containers(all=True, filters={"id": dangling_handle.state["container_id"]}):
                break
            await asyncio.sleep(0.05)
    finally:
        restarted.stop_dangling_reconciler()
    assert task.cancelling() or task.done()
    assert not engine.containers(all=True, filters={"id": dangling_handle.state["container_id"]})
    assert restarted.inspect_task(kept_handle).state == "running"
    await restarted.destroy_task(kept_handle, force=True)
    assert not restarted.tracks_alloc(kept.alloc_id)


def test_disabled_dangling_reconciler_does_not_start():
    driver = DockerDriver(DockerPluginConfig.from_plugin_config({"gc": {"dangling_containers": {"enabled": False}}}))
    assert driver.start_dangling_reconciler() is None


def test_plugin_config_keys_reach_the_driver_config():
    plugin = DockerPluginConfig.from_plugin_config({
        "allow_privileged": True,
        "volumes": {"enabled": True},
        "pull_activity_timeout": "3m",
        "infra_image": "pause:local",
        "gc": {"image": False, "container": False,
               "dangling_containers": {"enabled": True, "period": "10m", "creation_grace": "90s", "dry_run": True}},
    })
    assert plugin.allow_privileged and plugin.volumes_enabled and plugin.infra_image == "pause:local"
    assert (plugin.pull_activity_timeout_s, plugin.gc_image, plugin.gc_container) == (180.0, False, False)
    assert (plugin.dangling_period_s, plugin.dangling_creation_grace_s, plugin.dangling_dry_run) == (600.0, 90.0, True)
    defaults = DockerPluginConfig.from_plugin_config({})
    assert (defaults.dangling_enabled, defaults.dangling_period_s, defaults.dangling_creation_grace_s) == (True, 300.0, 300.0)
    with pytest.raises(ValueError, match='"gc.dangling_containers.creation_grace": 30s is less than minimum'):
        DockerPluginConfig.from_plugin_config({"gc": {"dangling_containers": {"creation_grace": "30s"}}})
    with pytest.raises(ValueError, match='"volumes.enable"'):
        DockerPluginConfig.from_plugin_config({"volumes": {"enable": True}})


async def test_missing_image_gives_a_clear_error(docker_task):
    image = f"127.0.0.1:1/yurt-missing-{uuid.uuid4().hex[:8]}:latest"
    with pytest.raises(DriverError) as raised:
        await DockerDriver().start_task(docker_task({"image": image, "command": "true"}))
    assert image in str(raised.value) and "Failed to pull" in str(raised.value)


async def test_privileged_refused_unless_allowed(docker_task):
    with pytest.raises(DriverError, match="privileged"):
        await DockerDriver().start_task(docker_task({"command": "true", "privileged": True}))


def test_fingerprint_reports_the_engine(engine):
    fp = DockerDriver(DockerPluginConfig(volumes_enabled=True)).fingerprint()
    assert fp.detected and fp.healthy
    attrs = fp.attributes
    assert attrs["driver.docker"] == "1"
    assert attrs["driver.docker.version"] == engine.version()["Version"]
    assert attrs["driver.docker.os_type"] == "linux"
    assert "runc" in attrs["driver.docker.runtimes"]
    assert attrs["driver.docker.volumes.enabled"] == "true"
    assert attrs["driver.docker.privileged.enabled"] == "false"


def test_fingerprint_without_an_engine():
    fp = DockerDriver(DockerPluginConfig(endpoint="unix:///nonexistent/docker.sock")).fingerprint()
    assert not fp.detected and "docker daemon" in fp.health_description


async def test_entrypoint_work_dir_and_hostname(docker_task):
    driver = DockerDriver()
    cfg = docker_task({
        "entrypoint": ["/bin/sh", "-c"],
        "args": ["echo host=$(hostname) cwd=$(pwd)"],
        "hostname": "yurt-box",
        "work_dir": "/tmp",
    })
    handle = await driver.start_task(cfg)
    assert (await driver.wait_task(handle)).exit_code == 0
    await wait_for_log(cfg, "host=yurt-box cwd=/tmp\n")
    await driver.destroy_task(handle)


async def test_logs_rotate_by_max_file_size(docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "yes $(head -c 1000 /dev/zero | tr '\\0' x) | head -c 2621440; echo; echo done"]})
    cfg.max_file_size_mb, cfg.max_files = 1, 2
    handle = await driver.start_task(cfg)
    assert (await driver.wait_task(handle)).exit_code == 0
    deadline = time.monotonic() + 60  # 2.6 MB through the engine's log stream: seconds alone, more under a loaded CI
    last = f"{cfg.log_dir}/web.stdout.2"
    while time.monotonic() < deadline and not (os.path.exists(last) and open(last).read().endswith("done\n")):
        await asyncio.sleep(0.1)
    names = sorted(n for n in os.listdir(cfg.log_dir) if n.startswith("web.stdout."))
    assert names == ["web.stdout.1", "web.stdout.2"]  # .0 rotated away (max_files = 2)
    assert os.path.getsize(f"{cfg.log_dir}/web.stdout.1") == 1024 * 1024
    assert open(last).read().endswith("done\n")
    await driver.destroy_task(handle)


AGENT_SCRIPT = """
import asyncio, json, sys
from yurt.drivers.base import TaskConfig
from yurt.drivers.docker import DockerDriver

async def main():
    handle = await DockerDriver().start_task(TaskConfig(**json.loads(sys.argv[1])))
    print(json.dumps(handle.to_dict()), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_logs_and_task_survive_sigkill_of_the_agent_process(docker_task):
    import dataclasses
    import json
    import signal
    import sys

    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "echo before; sleep 3; echo after; exit 7"]})
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT_SCRIPT, json.dumps(dataclasses.asdict(cfg)), stdout=asyncio.subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(agent.stdout.readline(), 30)
        handle = TaskHandle.from_dict(json.loads(line))
    finally:
        agent.send_signal(signal.SIGKILL)
        await agent.wait()
    await wait_for_log(cfg, "before\n")
    assert "after" not in read_log(cfg)
    fresh = DockerDriver()  # the restarted agent
    await fresh.recover_task(handle)
    assert (await asyncio.wait_for(fresh.wait_task(handle), 20)).exit_code == 7
    assert await wait_for_log(cfg, "after\n") == "before\nafter\n"
    await fresh.destroy_task(handle)


class StubEngine:
    """Just enough of the Engine API for the image logic: pulls fail unless `pull_ok(auth)`."""

    def __init__(self, present: set[str], pull_ok):
        self.present, self.pull_ok, self.pulls = present, pull_ok, []

    def inspect_image(self, name):
        import docker.errors

        if name not in self.present:
            raise docker.errors.ImageNotFound(name)
        return {"Id": name}

    def pull(self, repository, tag=None, auth_config=None, stream=False, decode=False):
        self.pulls.append((repository, tag, auth_config))
        if not self.pull_ok(auth_config):
            return iter([{"error": "unauthorized: authentication required"}])
        self.present.add(f"{repository}:{tag}")
        return iter([{"status": "Downloaded"}])


async def test_pull_only_when_missing_or_forced_and_auth_soft_fail(make_task):
    from yurt.drivers.docker.images import ensure_image

    plugin = DockerPluginConfig()
    engine = StubEngine({"app:1"}, pull_ok=lambda auth: True)
    assert await ensure_image(engine, make_task({"image": "app:1"}), plugin) == "app:1"
    assert engine.pulls == []
    await ensure_image(engine, make_task({"image": "app:1", "force_pull": True}), plugin)
    assert engine.pulls == [("app", "1", None)]

    auth = {"username": "u", "password": "p"}
    refusing = StubEngine(set(), pull_ok=lambda auth: auth is None)
    with pytest.raises(DriverError, match="Failed to pull `private/app:2`: unauthorized"):
        await ensure_image(refusing, make_task({"image": "private/app:2", "auth": auth}), plugin)
    task = make_task({"image": "private/app:2", "auth": auth, "auth_soft_fail": True})
    assert await ensure_image(refusing, task, plugin) == "private/app:2"
    assert refusing.pulls[-1] == ("private/app", "2", None)


async def test_load_image_from_an_archive_in_the_task_dir(engine, docker_task):
    cfg = docker_task({"image": "yurt-test/loadable:1", "load": "local/image.tar", "command": "echo", "args": ["loaded"]})
    engine.tag(TEST_IMAGE, "yurt-test/loadable", "1")
    with open(os.path.join(cfg.task_dir, "local", "image.tar"), "wb") as archive:
        for chunk in engine.get_image("yurt-test/loadable:1"):
            archive.write(chunk)
    engine.remove_image("yurt-test/loadable:1")
    driver = DockerDriver()
    handle = await driver.start_task(cfg)
    assert (await driver.wait_task(handle)).exit_code == 0
    await wait_for_log(cfg, "loaded\n")
    await driver.destroy_task(handle)
    engine.remove_image("yurt-test/loadable:1")


async def test_stop_without_kill_signal_uses_the_images_stop_signal(docker_task):
    driver = DockerDriver()
    handle = await driver.start_task(docker_task({"command": "sleep", "args": ["30"], "init": True}))
    start = time.monotonic()
    await driver.stop_task(handle, 5_000_000_000, "")
    result = await driver.wait_task(handle)
    assert result.signal == 15 and result.exit_code == 143
    assert time.monotonic() - start < 4
    await driver.destroy_task(handle)


# -- through the client agent (a fake server hands it allocs) ------------------------------


@pytest.fixture
async def fake_server():
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "client"))
    from fakeserver import FakeServer

    server = FakeServer()
    await server.start()
    yield server
    await server.stop()


def docker_alloc(node_id: str, script: str, job_type: str = "batch"):
    from fakeserver import make_alloc

    from yurt.structs.job import Task

    task = Task(name="box", driver="docker", config={"image": TEST_IMAGE, "command": "/bin/sh", "args": ["-c", script]})
    return make_alloc(node_id, [task], job_type=job_type)


async def test_client_agent_runs_a_docker_task_and_reattaches_after_restart(engine, fake_server, tmp_path):
    from yurt.client import ClientAgent, ClientConfig

    def agent() -> ClientAgent:
        config = ClientConfig(data_dir=str(tmp_path / "data"), node_name="docker-node",
                              servers=[fake_server.address], alloc_wait="2s", update_interval=0.05)
        return ClientAgent(config, drivers={"docker": DockerDriver()})

    first = agent()
    await first.start()
    await first.registered.wait()
    assert fake_server.nodes[first.node.id]["Attributes"]["driver.docker"] == "1"
    alloc = docker_alloc(first.node.id, "echo started $NOMAD_TASK_NAME; while [ ! -e /alloc/go ]; do sleep 0.1; done; exit 6")
    await fake_server.add_alloc(alloc)
    second = None
    try:
        await fake_server.wait_status(alloc.id, "running")
        container_id = first.alloc_runners[alloc.id].task_runners["box"].handle.state["container_id"]
        await first.stop()
        second = agent()
        await second.start()
        assert second.alloc_runners[alloc.id].task_runners["box"].handle.state["container_id"] == container_id
        marker = os.path.join(second.config.alloc_dir, alloc.id, "alloc", "go")
        open(marker, "w").close()
        update = await fake_server.wait_status(alloc.id, "failed")
        events = update["TaskStates"]["box"]["Events"]
        assert [e["Type"] for e in events].count("Started") == 1  # re-attached, never restarted
        assert events[-2]["DisplayMessage"] == "Exit Code: 6"
        log = os.path.join(second.config.alloc_dir, alloc.id, "alloc", "logs", "box.stdout.0")
        deadline = time.monotonic() + 10  # the follower copies asynchronously
        while time.monotonic() < deadline and not (os.path.exists(log) and open(log).read()):
            await asyncio.sleep(0.05)
        assert open(log).read() == "started box\n"
    finally:
        for a in (first, second):
            if a is not None:
                try:
                    await a.stop()
                    await a.destroy_all_allocs()
                except Exception:
                    pass
    assert not engine.containers(all=True, filters={"id": container_id})


async def test_task_over_its_memory_is_oom_killed(docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "head -c 268435456 /dev/zero | tail > /dev/null"]})
    cfg.memory_mb = 16
    handle = await driver.start_task(cfg)
    result = await asyncio.wait_for(driver.wait_task(handle), 30)
    assert result.oom_killed and result.err == "OOM Killed"
    assert result.exit_code != 0
    await driver.destroy_task(handle)


async def test_network_mode_none_has_only_loopback(docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "ls /sys/class/net"], "network_mode": "none"})
    handle = await driver.start_task(cfg)
    assert (await driver.wait_task(handle)).exit_code == 0
    assert await wait_for_log(cfg, "lo\n") == "lo\n"
    await driver.destroy_task(handle)


async def test_exec_inside_the_running_container(docker_task):
    driver = DockerDriver()
    handle = await driver.start_task(docker_task({"command": "sleep", "args": ["30"]}))
    stdout, stderr, code = await driver.exec_task(handle, ["/bin/sh", "-c", "echo in-$NOMAD_TASK_DIR; echo oops >&2; exit 4"])
    assert (stdout, stderr, code) == (b"in-/local\n", b"oops\n", 4)
    ps_out, _, _ = await driver.exec_task(handle, ["ps", "-o", "comm"])
    assert b"sleep" in ps_out
    await driver.destroy_task(handle, force=True)
    with pytest.raises(DriverError, match="not running"):
        await driver.exec_task(handle, ["true"])


def test_follower_reads_both_streams_from_one_multiplexed_response():
    from yurt.drivers.docker.logfollower import multiplexed_batches, parse_timestamp_ns

    def frame(stream: int, payload: bytes) -> bytes:
        return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload

    data = frame(1, b"2026-11-26T18:19:03.5Z out\n") + frame(2, b"2026-11-26T18:19:04Z err\n")
    # split at arbitrary points, as the engine's chunks arrive
    assert [f for batch in multiplexed_batches([data[:5], data[5:30], data[30:]]) for f in batch] == [
        ("stdout", b"2026-11-26T18:19:03.5Z out\n"), ("stderr", b"2026-11-26T18:19:04Z err\n")]
    from datetime import datetime, timezone

    cases = {
        "2026-11-26T18:19:03.0123Z": (datetime(2026, 11, 26, 18, 19, 3, tzinfo=timezone.utc), 12_300_000),
        "2000-02-29T23:59:59.999999999+02:00": (datetime(2000, 2, 29, 21, 59, 59, tzinfo=timezone.utc), 999_999_999),
        "1970-01-01T00:30:00-01:30": (datetime(1970, 1, 1, 2, 0, 0, tzinfo=timezone.utc), 0),
    }
    for text, (moment, fraction_ns) in cases.items():
        assert parse_timestamp_ns(text) == int(moment.timestamp()) * 10**9 + fraction_ns, text
    with pytest.raises(ValueError):
        parse_timestamp_ns("2026-13-01T00:00:00Z")


def test_follower_script_needs_only_the_stdlib(tmp_path):
    """Started as `python -S -E logfollower.py`: none of the yurt package (nor site-packages) is
    imported, so a follower's start costs little next to the container's."""
    import subprocess

    from yurt.drivers.docker.logfollower import launch_argv

    argv = launch_argv(str(tmp_path / "missing.json"))
    assert argv[1:3] == ["-S", "-E"]
    probe = (f"import runpy, sys; runpy.run_path({argv[3]!r}, run_name='probe'); "  # imports it, main() not run
             "print(sorted(m for m in sys.modules if m.startswith(('yurt', 'docker', 'requests'))))")
    out = subprocess.run([argv[0], "-S", "-E", "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    failed = subprocess.run([*argv, "--foreground"], capture_output=True, text=True, timeout=30)
    assert "FileNotFoundError" in failed.stderr and "ImportError" not in failed.stderr


async def test_wait_blocks_on_the_engine_instead_of_polling(docker_task):
    """wait_task asks the engine's wait route (as Nomad's WaitContainer) and inspects once the
    container stopped, rather than inspecting it every poll interval."""
    driver = DockerDriver()
    cfg = docker_task({"command": "/bin/sh", "args": ["-c", "sleep 2; exit 4"]})
    handle = await driver.start_task(cfg)
    calls = []
    inspect = driver.client.inspect_container
    driver.client.inspect_container = lambda *a, **kw: calls.append(a) or inspect(*a, **kw)
    result = await asyncio.wait_for(driver.wait_task(handle), 20)
    assert result.exit_code == 4
    assert len(calls) <= 2, f"{len(calls)} inspects while waiting"  # polling from 50 ms up: ~10 in 2 s
    await driver.destroy_task(handle)


async def test_a_leftover_container_with_the_tasks_name_is_replaced(engine, docker_task):
    driver = DockerDriver()
    cfg = docker_task({"command": "sleep", "args": ["30"]})
    from yurt.drivers.docker.spec import container_name

    stale = engine.create_container(TEST_IMAGE, command=["sleep", "30"], name=container_name(cfg),
                                    labels={LABEL_ALLOC_ID: cfg.alloc_id})["Id"]
    handle = await driver.start_task(cfg)
    assert handle.state["container_id"] != stale
    assert not engine.containers(all=True, filters={"id": stale})
    assert engine.inspect_container(handle.state["container_id"])["State"]["Running"]
    await driver.destroy_task(handle, force=True)


def test_an_exit_observed_by_two_waiters_at_once_is_recorded_for_both(tmp_path):
    """The task runner's wait_task and stop_task's own wait both wake when the engine's wait
    route answers and both record the exit (exit.json) from executor threads at the same
    moment. The atomic write's temporary file was named by the process only, so one
    thread's rename took the other's file away: FileNotFoundError out of wait_task, the
    task runner ended without a Terminated event and the alloc stayed `running` after a
    stop (W7's purge of 50 containers: 10-17 of them)."""
    import threading

    driver = DockerDriver()
    exited = {"State": {"Status": "exited", "Running": False, "ExitCode": 137,
                        "FinishedAt": "2026-11-27T02:00:00.5Z"}}
    driver._inspect = lambda handle: exited
    handle = TaskHandle(driver="docker", task_id="a/t",
                        state={"container_id": "c" * 64, "state_dir": str(tmp_path)})
    rounds, waiters = 100, 4
    barrier, errors, results = threading.Barrier(waiters), [], []

    def waiter():
        for _ in range(rounds):
            barrier.wait()
            try:
                results.append(driver._observe(handle))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            if barrier.wait() == 0:
                os.unlink(tmp_path / "exit.json")  # the next round observes a fresh exit

    threads = [threading.Thread(target=waiter) for _ in range(waiters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == rounds * waiters
    assert {(state, result.exit_code) for state, result in results} == {("exited", 137)}


async def test_followers_fork_from_one_launcher_and_outlive_it(docker_task, tmp_path):
    """Log followers are forked by one launcher per alloc root (no interpreter start per
    container); they are detached: the launcher's exit (its agent went away) leaves them copying."""
    import psutil

    from yurt.drivers.docker import driver as docker_driver

    marker = str(tmp_path / "alloc-root")
    driver = DockerDriver(alloc_root=marker)
    script = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done"
    cfgs = [docker_task({"command": "/bin/sh", "args": ["-c", script]}) for _ in range(2)]
    handles = [await driver.start_task(cfg) for cfg in cfgs]
    for cfg in cfgs:
        await wait_for_log(cfg, "line1\n")
    launcher = docker_driver._follower_launchers[marker]
    assert "--zygote" in launcher.args and marker in launcher.args
    followers = [psutil.Process(driver._follower_pid(h)) for h in handles]
    assert {f.ppid() for f in followers} == {launcher.pid}
    assert len({f.pid for f in followers}) == 2
    launcher.stdin.close()  # end of input: the launcher exits
    assert launcher.wait(timeout=10) == 0
    docker_driver._follower_launchers.pop(marker)
    count = read_log(cfgs[0]).count("\n")
    await wait_for_log(cfgs[0], f"line{count + 2}\n")  # still copied after the launcher's exit
    assert all(f.is_running() and f.status() != psutil.STATUS_ZOMBIE for f in followers)
    for handle in handles:
        await driver.destroy_task(handle, force=True)
