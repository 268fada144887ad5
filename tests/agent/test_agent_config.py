import textwrap

import pytest

from yurt.agent.command import build_config
from yurt.agent.config import AgentConfigError
from yurt.structs import SECOND


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_dev_mode_is_server_and_client_on_loopback_with_raw_exec():
    cfg = build_config(["-dev"])
    assert cfg.server.enabled and cfg.client.enabled
    assert cfg.bind_addr == "127.0.0.1" and cfg.http_port == 4646
    assert cfg.plugin_enabled("raw_exec")
    assert cfg.data_dir == ""  # a temp dir is made at start


def test_config_file_in_nomad_format(tmp_path):
    path = write(tmp_path, "client.hcl", """
        data_dir   = "/tmp/b"
        bind_addr  = "127.0.0.1"
        datacenter = "dc2"
        name       = "n1"
        ports { http = 4656 }
        client {
          enabled    = true
          servers    = ["127.0.0.1:4646"]
          node_class = "fast"
          meta { rack = "r1" }
          options = { "driver.allowlist" = "raw_exec" }
        }
        plugin "raw_exec" {
          config { enabled = true }
        }
    """)
    cfg = build_config(["-config", path])
    assert (cfg.data_dir, cfg.datacenter, cfg.name, cfg.http_port) == ("/tmp/b", "dc2", "n1", 4656)
    assert cfg.client.enabled and not cfg.server.enabled
    assert cfg.client.servers == ["127.0.0.1:4646"]
    assert cfg.client.node_class == "fast" and cfg.client.meta == {"rack": "r1"}
    assert cfg.client.options == {"driver.allowlist": "raw_exec"}
    assert cfg.plugin_enabled("raw_exec")
    assert cfg.http_address == "127.0.0.1:4656"


def test_flags_override_files(tmp_path):
    path = write(tmp_path, "a.hcl", 'data_dir = "/tmp/x"\nserver { enabled = true\n heartbeat_grace = "3s" }\n')
    cfg = build_config(["-config", path, "-data-dir=/tmp/y", "-dc", "east", "-node", "srv"])
    assert cfg.data_dir == "/tmp/y" and cfg.datacenter == "east" and cfg.name == "srv"
    assert cfg.server.enabled and cfg.server.heartbeat_grace == 3 * SECOND


def test_json_config(tmp_path):
    path = write(tmp_path, "a.json", '{"data_dir": "/tmp/j", "server": {"enabled": true}}')
    cfg = build_config(["-config", path])
    assert cfg.data_dir == "/tmp/j" and cfg.server.enabled


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, "bad.hcl", 'data_dir = "/tmp/x"\nclient {\n  enabled = true\n  node_clas = "x"\n}\n')
    with pytest.raises(AgentConfigError) as err:
        build_config(["-config", path])
    msg = str(err.value)
    assert f"{path}:4" in msg and '"node_clas"' in msg and 'Did you mean "node_class"?' in msg


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "bad.hcl", 'data_dir = "/tmp/x"\nports { http = "abc" }\nserver { enabled = true }\n')
    with pytest.raises(AgentConfigError, match=r"bad.hcl:2: http: expected int, got 'abc'"):
        build_config(["-config", path])


def test_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "bad.hcl", 'data_dir = "/tmp/x"\nserver {\n  enabled = \n')
    with pytest.raises(AgentConfigError, match=r"bad.hcl:\d+,\d+: syntax error"):
        build_config(["-config", path])


def test_mode_and_data_dir_are_required():
    with pytest.raises(AgentConfigError, match="Must specify either server, client or dev mode"):
        build_config(["-data-dir", "/tmp/x"])
    with pytest.raises(AgentConfigError, match="Must specify data directory"):
        build_config(["-server"])
    with pytest.raises(AgentConfigError, match="servers to join"):
        build_config(["-client", "-data-dir", "/tmp/x"])


def test_client_servers_and_meta_flags():
    cfg = build_config(["-client", "-data-dir", "/tmp/c", "-servers", "127.0.0.1:4646,127.0.0.2:4646",
                        "-meta", "rack=r2", "-node-class", "gpu"])
    assert cfg.client.servers == ["127.0.0.1:4646", "127.0.0.2:4646"]
    assert cfg.client.meta == {"rack": "r2"} and cfg.client.node_class == "gpu"


def test_server_settings_reach_the_server_config(tmp_path):
    from yurt.agent.wiring import build_server

    path = write(tmp_path, "s.hcl", """
        data_dir = "/tmp/s"
        bind_addr = "127.0.0.1"
        ports { http = 5646 }
        server {
          enabled = true
          heartbeat_grace = "3s"
          min_heartbeat_ttl = "2s"
          num_schedulers = 1
        }
    """)
    server = build_server(build_config(["-config", path]))
    sc = server.config
    assert (sc.heartbeat_grace, sc.min_heartbeat_ttl, sc.num_schedulers) == (3.0, 2.0, 1)
    assert (sc.advertise_addr, sc.http_port) == ("127.0.0.1", 5646)


def test_plugin_configs_of_every_builtin_driver_are_kept(tmp_path):
    path = write(tmp_path, "plugins.hcl", """
        client { enabled = true }
        plugin "raw_exec" {
          config { enabled = true }
        }
        plugin "exec" {
          config {
            default_pid_mode = "host"
            default_ipc_mode = "host"
            no_pivot_root    = true
            allow_caps       = ["chown", "kill", "net_raw"]
          }
        }
        plugin "java" {
          config { default_pid_mode = "host" }
        }
        plugin "docker" {
          config {
            allow_privileged      = true
            pull_activity_timeout = "5m"
            infra_image           = "pause:local"
            volumes { enabled = true }
            gc {
              image     = false
              container = true
              dangling_containers {
                enabled        = true
                period         = "3m"
                creation_grace = "2m"
              }
            }
          }
        }
    """)
    cfg = build_config(["-config", path, "-data-dir", str(tmp_path / "d"), "-servers", "127.0.0.1:1"])
    assert cfg.plugin_enabled("raw_exec")
    assert cfg.plugins["exec"]["config"]["allow_caps"] == ["chown", "kill", "net_raw"]
    docker = cfg.plugins["docker"]["config"]
    assert docker["volumes"] == {"enabled": True}
    assert docker["gc"]["dangling_containers"]["creation_grace"] == "2m"


@pytest.mark.parametrize("body, key, line", [
    ('plugin "docker" {\n  config {\n    allow_privileged = true\n    bogus_key = 1\n  }\n}\n', "bogus_key", 4),
    ('plugin "docker" {\n  config {\n    gc {\n      dangling_containers {\n        perod = "1m"\n      }\n    }\n  }\n}\n',
     "gc.dangling_containers.perod", 5),
    ('plugin "docker" {\n  config {\n    gc {\n      dangling_containers {\n        creation_grace = "10s"\n'
     '      }\n    }\n  }\n}\n', "gc.dangling_containers.creation_grace", 5),
    ('plugin "docker" {\n  config {\n    pull_activity_timeout = "soon"\n  }\n}\n', "pull_activity_timeout", 3),
    ('client { enabled = true }\nplugin "exec" {\n  config {\n    default_pid_mode = "shared"\n  }\n}\n',
     "default_pid_mode", 4),
    ('plugin "java" {\n  config {\n    no_pivot_root = true\n  }\n}\n', "no_pivot_root", 3),
    ('plugin "exec" {\n  config {\n    allow_caps = ["chown", "superpower"]\n  }\n}\n', "allow_caps", 3),
    ('client {\n  enabled = true\n}\nplugin "raw_exec" {\n  config {\n    enabled = true\n    enabel = true\n  }\n}\n',
     "enabel", 7),
    ('plugin "raw_exec" {\n  settings { enabled = true }\n}\n', "settings", 2),
])
def test_plugin_config_errors_name_the_key_and_line(tmp_path, body, key, line):
    path = write(tmp_path, "bad.hcl", body)
    with pytest.raises(AgentConfigError) as err:
        build_config(["-config", path, "-data-dir", str(tmp_path / "d"), "-dev"])
    msg = str(err.value)
    assert f"{path}:{line}:" in msg and f'"{key}' in msg, msg


def test_external_plugins_are_not_checked(tmp_path):
    path = write(tmp_path, "ext.hcl", 'plugin "podman" {\n  config { socket_path = "unix:///run/podman.sock" }\n}\n')
    cfg = build_config(["-config", path, "-dev"])
    assert cfg.plugins["podman"]["config"]["socket_path"] == "unix:///run/podman.sock"
