"""Host volumes: client `host_volume` config, the node's `HostVolumes`, a task's
`volume_mount`s resolved into driver mounts, and the exec / docker drivers applying them."""

import asyncio
import os
import sys
import uuid

import pytest
from fakeserver import make_alloc, raw_task

from yurt.agent.config import AgentConfig, AgentConfigError, load_files
from yurt.client.config import ClientConfig
from yurt.client.fingerprint import build_node
from yurt.client.volumes import HostVolumeConfig, VolumeError, host_volume_mounts, parse_host_volumes
from yurt.drivers.base import MountConfig, TaskConfig
from yurt.structs import evolve
from yurt.structs.job import Task

pytestmark = pytest.mark.timeout(60)


# ---- config and fingerprint ---------------------------------------------------------------------

def test_parse_host_volumes():
    vols = parse_host_volumes({"data": {"path": "/srv/data", "read_only": True}, "logs": [{"path": "/var/log"}]})
    assert vols == {"data": HostVolumeConfig("/srv/data", True), "logs": HostVolumeConfig("/var/log", False)}


@pytest.mark.parametrize("body,message", [
    ({}, 'host_volume "v": path is required'),
    ({"path": "rel/dir"}, 'host_volume "v": path "rel/dir" must be absolute'),
    ({"path": "/x", "read_only": "maybe"}, "read_only: expected bool, got 'maybe'"),
    ({"path": "/x", "readonly": True}, 'unexpected key "readonly"'),
])
def test_parse_host_volume_errors_name_the_field(body, message):
    with pytest.raises(VolumeError, match=message):
        parse_host_volumes({"v": body})


def test_agent_config_host_volume_blocks(tmp_path):
    path = tmp_path / "client.hcl"
    path.write_text('client {\n  enabled = true\n  host_volume "data" {\n    path = "/srv/data"\n'
                    '    read_only = true\n  }\n  host_volume "scratch" {\n    path = "/tmp"\n  }\n}\n')
    cfg = load_files(AgentConfig(), [str(path)])
    assert cfg.client.host_volumes == {"data": HostVolumeConfig("/srv/data", True),
                                       "scratch": HostVolumeConfig("/tmp", False)}
    bad = tmp_path / "bad.hcl"
    bad.write_text('client {\n  host_volume "data" {\n    path = "srv"\n  }\n}\n')
    with pytest.raises(AgentConfigError, match=r'bad.hcl:2: client.host_volume "data": path "srv" must be absolute'):
        load_files(AgentConfig(), [str(bad)])


def test_agent_config_json_host_volumes(tmp_path):
    path = tmp_path / "client.json"
    path.write_text('{"client": {"host_volume": [{"data": [{"path": "/srv/data"}]}]}}')
    assert load_files(AgentConfig(), [str(path)]).client.host_volumes == {"data": HostVolumeConfig("/srv/data")}


def test_node_host_volumes_have_nomads_shape(tmp_path):
    config = ClientConfig(data_dir=str(tmp_path), host_volumes={"data": HostVolumeConfig("/srv/data", True)})
    node = build_node(config, {})
    assert node.host_volumes == {"data": {"Path": "/srv/data", "ReadOnly": True}}
    assert build_node(ClientConfig(data_dir=str(tmp_path)), {}).host_volumes is None


# ---- resolution ---------------------------------------------------------------------------------

def alloc_with(volumes: dict, mounts: list[dict], name: str = "example.g[2]"):
    task = Task(name="t", driver="exec", volume_mounts=mounts)
    alloc = make_alloc("node", [task])
    group = evolve(alloc.job.task_groups[0], volumes=volumes)
    return evolve(alloc, name=name, job=evolve(alloc.job, task_groups=[group])), task


NODE = {"shared": {"Path": "/srv/shared", "ReadOnly": False}, "ro": {"Path": "/srv/ro", "ReadOnly": True},
        "per[2]": {"Path": "/srv/per2", "ReadOnly": False}}


def test_mounts_combine_read_only_and_keep_propagation():
    alloc, task = alloc_with(
        {"a": {"Type": "host", "Source": "shared"}, "b": {"Type": "host", "Source": "ro"},
         "c": {"Type": "host", "Source": "shared", "ReadOnly": True}},
        [{"Volume": "a", "Destination": "/data", "PropagationMode": "host-to-task"},
         {"Volume": "b", "Destination": "/ro"}, {"Volume": "c", "Destination": "/c"},
         {"Volume": "a", "Destination": "/data-ro", "ReadOnly": True}])
    assert host_volume_mounts(alloc, task, NODE) == [
        MountConfig("/data", "/srv/shared", False, "host-to-task"), MountConfig("/ro", "/srv/ro", True),
        MountConfig("/c", "/srv/shared", True), MountConfig("/data-ro", "/srv/shared", True)]


def test_per_alloc_volume_uses_the_alloc_index():
    alloc, task = alloc_with({"p": {"Type": "host", "Source": "per", "PerAlloc": True}},
                             [{"Volume": "p", "Destination": "/p"}])
    assert host_volume_mounts(alloc, task, NODE)[0].host_path == "/srv/per2"


def test_missing_host_volume_and_group_volume_are_errors():
    alloc, task = alloc_with({"a": {"Type": "host", "Source": "gone"}}, [])
    with pytest.raises(VolumeError, match="host volume validation error: missing gone"):
        host_volume_mounts(alloc, task, NODE)
    alloc, task = alloc_with({}, [{"Volume": "nope", "Destination": "/x"}])
    with pytest.raises(VolumeError, match="No group volume declaration found named: nope"):
        host_volume_mounts(alloc, task, NODE)
    alloc, task = alloc_with({"a": {"Type": "host", "Source": "shared"}},
                             [{"Volume": "a", "Destination": "/x", "PropagationMode": "sideways"}])
    with pytest.raises(VolumeError, match='propagation_mode "sideways"'):
        host_volume_mounts(alloc, task, NODE)


def test_csi_volumes_are_not_host_mounts():
    alloc, task = alloc_with({"c": {"Type": "csi", "Source": "ebs"}}, [{"Volume": "c", "Destination": "/c"}])
    assert host_volume_mounts(alloc, task, {}) == []


# ---- the client agent ---------------------------------------------------------------------------

async def test_node_registers_host_volumes_and_missing_one_fails_the_task(server, agent, tmp_path):
    a = await agent(host_volumes={"shared": HostVolumeConfig(str(tmp_path))})
    assert server.nodes[a.node.id]["HostVolumes"] == {"shared": {"Path": str(tmp_path), "ReadOnly": False}}
    alloc = make_alloc(a.node.id, [raw_task("t", "true", volume_mounts=[{"Volume": "v", "Destination": "/v"}])])
    group = evolve(alloc.job.task_groups[0], volumes={"v": {"Type": "host", "Source": "elsewhere"}})
    alloc = evolve(alloc, job=evolve(alloc.job, task_groups=[group]))
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    events = update["TaskStates"]["t"]["Events"]
    assert [e["Type"] for e in events] == ["Received", "Task Setup", "Task hook failed", "Not Restarting"]
    assert events[2]["DisplayMessage"] == "volumes: host volume validation error: missing elsewhere"


# ---- drivers ------------------------------------------------------------------------------------

def task_config(tmp_path, config: dict, mounts: list[MountConfig]) -> TaskConfig:
    alloc_id = str(uuid.uuid4())
    alloc_dir = tmp_path / alloc_id
    for d in (alloc_dir / "t" / "local", alloc_dir / "alloc" / "logs"):
        os.makedirs(d, exist_ok=True)
    return TaskConfig(alloc_id=alloc_id, task_name="t", config=config, env={"PATH": "/usr/bin:/bin"},
                      alloc_dir=str(alloc_dir), task_dir=str(alloc_dir / "t"),
                      log_dir=str(alloc_dir / "alloc" / "logs"), memory_mb=64, cpu_shares=100, mounts=mounts)


def read_log(cfg: TaskConfig, stream: str = "stdout") -> str:
    path = f"{cfg.log_dir}/t.{stream}.0"
    return open(path).read() if os.path.exists(path) else ""


@pytest.fixture
def volume_dirs(tmp_path):
    rw, ro = tmp_path / "vol-rw", tmp_path / "vol-ro"
    for d in (rw, ro):
        d.mkdir()
        d.chmod(0o777)
    (ro / "hello.txt").write_text("through the mount\n")
    return rw, ro


SCRIPT = ("cat /srv/ro/hello.txt; echo w > /srv/ro/new.txt && echo ro-writable || echo ro-refused; "
          "echo from-task > /data/out.txt && echo rw-ok")


async def test_exec_task_reads_through_the_mount_and_read_only_is_enforced(tmp_path, volume_dirs):
    from yurt.drivers.exec import ExecDriver, isolation_unavailable
    from yurt.drivers.exec.chroot import mounts_under

    if isolation_unavailable():
        pytest.skip(f"cannot isolate here: {isolation_unavailable()}")
    rw, ro = volume_dirs
    cfg = task_config(tmp_path, {"command": "/bin/sh", "args": ["-c", SCRIPT]},
                      [MountConfig("/srv/ro", str(ro), readonly=True), MountConfig("/data", str(rw))])
    driver = ExecDriver()
    handle = await driver.start_task(cfg)
    try:
        result = await asyncio.wait_for(driver.wait_task(handle), 30)
    finally:
        await driver.destroy_task(handle, force=True)
    assert result.exit_code == 0, read_log(cfg, "stderr")
    assert read_log(cfg) == "through the mount\nro-refused\nrw-ok\n"
    assert not (ro / "new.txt").exists()
    assert (rw / "out.txt").read_text() == "from-task\n"
    assert mounts_under(cfg.task_dir) == []


def test_exec_mount_target_stays_inside_the_task(tmp_path):
    from yurt.drivers.exec.chroot import mount_target

    root = tmp_path / "task"
    (root / "local").mkdir(parents=True)
    os.symlink("/etc", root / "local" / "evil")
    assert mount_target(str(root), "/data") == str(root / "data")
    assert mount_target(str(root), "srv/ro") == str(root / "srv" / "ro")
    for bad in ("/../../outside", "/local/evil/x", "/"):
        with pytest.raises(OSError, match="is not inside the task"):
            mount_target(str(root), bad)


def test_docker_spec_binds_host_volumes(tmp_path):
    pytest.importorskip("docker")
    from yurt.drivers.docker import DockerPluginConfig
    from yurt.drivers.docker.spec import task_mounts

    cfg = task_config(tmp_path, {"image": "x"}, [MountConfig("/data", "/srv/a", True, "host-to-task"),
                                                  MountConfig("/b", "/srv/b")])
    mounts = task_mounts(cfg, DockerPluginConfig())
    assert [(m["Target"], m["Source"], m["Type"], m["ReadOnly"], m["BindOptions"]["Propagation"]) for m in mounts] == [
        ("/data", "/srv/a", "bind", True, "rslave"), ("/b", "/srv/b", "bind", False, "rprivate")]


async def test_docker_task_reads_through_the_mount(tmp_path, volume_dirs):
    pytest.importorskip("docker")
    from yurt.drivers.docker import DockerDriver
    from yurt.drivers.docker.driver import connect

    try:
        client = connect(timeout=5)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine here
        pytest.skip(f"no Docker engine answers: {exc}")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "drivers"))
    from docker_image import TEST_IMAGE, ensure_test_image

    ensure_test_image(client)
    rw, ro = volume_dirs
    cfg = task_config(tmp_path, {"image": TEST_IMAGE, "command": "/bin/sh", "args": ["-c", SCRIPT]},
                      [MountConfig("/srv/ro", str(ro), readonly=True), MountConfig("/data", str(rw))])
    cfg.env["NOMAD_JOB_NAME"] = "example"
    driver = DockerDriver()
    handle = await driver.start_task(cfg)
    try:
        result = await asyncio.wait_for(driver.wait_task(handle), 30)
        for _ in range(100):
            if "rw-ok" in read_log(cfg):
                break
            await asyncio.sleep(0.05)
    finally:
        await driver.destroy_task(handle, force=True)
        client.close()
    assert result.exit_code == 0, read_log(cfg, "stderr")
    assert read_log(cfg) == "through the mount\nro-refused\nrw-ok\n"
    assert (rw / "out.txt").read_text() == "from-task\n"
