"""`plugin "<driver>" { config { ... } }`: each built-in driver checks its keys and honours them."""

import pytest

from yurt.drivers import builtin_drivers, validate_plugin_config
from yurt.drivers.exec import ExecDriver
from yurt.drivers.exec.capabilities import CAPABILITIES
from yurt.drivers.java import JavaDriver


def test_exec_plugin_config_sets_modes_caps_and_denied_ids():
    driver = ExecDriver.from_plugin_config({
        "default_pid_mode": "host", "default_ipc_mode": "host", "no_pivot_root": True,
        "allow_caps": ["CAP_CHOWN", "kill", "net_raw"], "denied_host_uids": "0,10-12",
    })
    assert (driver.default_pid_mode, driver.default_ipc_mode) == ("host", "host")
    assert driver.allow_caps == ("chown", "kill", "net_raw")
    assert driver.denied_uids == {0, 10, 11, 12}
    assert driver.validate_config({"command": "x", "cap_add": ["net_raw"]}) == []
    assert any('"cap_add"' in e for e in driver.validate_config({"command": "x", "cap_add": ["sys_admin"]}))
    assert ExecDriver.from_plugin_config({"allow_caps": ["all"]}).allow_caps == CAPABILITIES


def test_java_takes_exec_keys_but_no_pivot_root():
    driver = JavaDriver.from_plugin_config({"default_pid_mode": "host", "allow_caps": ["chown"]})
    assert driver.default_pid_mode == "host" and driver.allow_caps == ("chown",)
    with pytest.raises(ValueError, match='"no_pivot_root"'):
        JavaDriver.from_plugin_config({"no_pivot_root": True})


@pytest.mark.parametrize("name, config, key", [
    ("exec", {"default_ipc_mode": "shared"}, "default_ipc_mode"),
    ("exec", {"allow_caps": ["chown", "superpower"]}, "allow_caps"),
    ("exec", {"allow_caps": [1]}, "allow_caps[0]"),
    ("exec", {"denied_host_uids": "5-1"}, "denied_host_uids"),
    ("exec", {"nope": 1}, "nope"),
    ("java", {"default_pid_mode": 3}, "default_pid_mode"),
    ("raw_exec", {"enabled": "yes"}, "enabled"),
    ("raw_exec", {"enable": True}, "enable"),
    ("mock_driver", {"bogus": True}, "bogus"),
    ("docker", {"gc": {"dangling_containers": {"period": "often"}}}, "gc.dangling_containers.period"),
    ("docker", {"pull_activity_timeout": "30s"}, "pull_activity_timeout"),
    ("docker", {"tls": {"cert": "a", "certificate": "b"}}, "tls.certificate"),
    ("docker", {"allow_privileged": "true"}, "allow_privileged"),
])
def test_bad_plugin_config_is_named(name, config, key):
    errors = validate_plugin_config(name, config)
    assert any(f'"{key}"' in e for e in errors), errors
    with pytest.raises(ValueError, match=f'plugin "{name}"'):
        builtin_drivers(plugin_configs={name: config})


def test_valid_configs_pass_and_external_plugins_are_not_checked():
    assert validate_plugin_config("raw_exec", {"enabled": True, "denied_host_uids": "0"}) == []
    assert validate_plugin_config("docker", {"auth": {"config": "/root/.docker/config.json"},
                                             "logging": {"type": "json-file", "config": {"max-size": "10m"}},
                                             "allowed_modes": {"network": ["bridge"]}}) == []
    assert validate_plugin_config("podman", {"anything": 1}) == []


def test_builtin_drivers_pass_each_plugin_config_to_its_driver(tmp_path):
    drivers = builtin_drivers(
        raw_exec_enabled=True,
        plugin_configs={
            "exec": {"default_pid_mode": "host"},
            "java": {"default_ipc_mode": "host"},
            "docker": {"allow_privileged": True, "volumes": {"enabled": True},
                       "gc": {"dangling_containers": {"period": "1m", "creation_grace": "2m"}}},
            "raw_exec": {"enabled": True},
        },
        alloc_root=str(tmp_path / "alloc"),
    )
    assert drivers["raw_exec"].enabled
    assert drivers["exec"].default_pid_mode == "host" and drivers["java"].default_ipc_mode == "host"
    docker = drivers["docker"]
    assert docker.plugin.allow_privileged and docker.plugin.volumes_enabled
    assert (docker.plugin.dangling_period_s, docker.plugin.dangling_creation_grace_s) == (60.0, 120.0)
    assert docker.alloc_root == str(tmp_path / "alloc")


async def test_a_pull_without_activity_for_pull_activity_timeout_is_abandoned(make_task):
    docker = pytest.importorskip("docker")
    import requests

    from yurt.drivers.base import DriverError
    from yurt.drivers.docker import DockerPluginConfig
    from yurt.drivers.docker.images import ensure_image

    class Engine:
        def inspect_image(self, name):
            raise docker.errors.ImageNotFound("no such image")

    class StalledPuller(Engine):
        def pull(self, *args, **kwargs):
            raise requests.exceptions.ReadTimeout("UnixHTTPConnectionPool: Read timed out. (read timeout=90)")

    plugin = DockerPluginConfig.from_plugin_config({"pull_activity_timeout": "90s"})
    cfg = make_task({"image": "registry.example/app:1"})
    with pytest.raises(DriverError, match=r"no pull activity for 90s \(pull_activity_timeout\)") as raised:
        await ensure_image(Engine(), cfg, plugin, puller=StalledPuller())
    assert raised.value.recoverable
