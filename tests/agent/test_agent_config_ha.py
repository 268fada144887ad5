"""The server block's HA keys: state_backend, etcd_endpoints, etcd_prefix, etcd_lease_ttl."""

import textwrap

import pytest

from yurt.agent.command import build_config
from yurt.agent.config import AgentConfigError
from yurt.agent.wiring import build_server


def config(tmp_path, server_body: str):
    path = tmp_path / "s.hcl"
    path.write_text(textwrap.dedent('data_dir = "/tmp/s"\nserver {\n  enabled = true\n') + server_body + "}\n")
    return build_config(["-config", str(path)]), str(path)


def test_etcd_keys_reach_the_server_config(tmp_path):
    cfg, _ = config(tmp_path, '''
      state_backend  = "etcd"
      etcd_endpoints = ["http://127.0.0.1:2379", "127.0.0.1:22379"]
      etcd_prefix    = "/prod"
      etcd_lease_ttl = "3s"
    ''')
    sc = build_server(cfg).config
    assert (sc.state_backend, sc.etcd_endpoints, sc.etcd_prefix, sc.etcd_lease_ttl) == (
        "etcd", ["http://127.0.0.1:2379", "127.0.0.1:22379"], "/prod", 3.0)


def test_default_is_the_embedded_sqlite_log(tmp_path):
    cfg, _ = config(tmp_path, "")
    sc = build_server(cfg).config
    assert sc.state_backend == "sqlite" and sc.etcd_endpoints == [] and sc.etcd_lease_ttl == 5.0


@pytest.mark.parametrize("body, message", [
    ('state_backend = "zookeeper"\n', 'server.state_backend must be "sqlite" or "etcd", got \'zookeeper\''),
    ('state_backend = "etcd"\n', 'server.state_backend = "etcd" needs server.etcd_endpoints'),
    ('state_backend = "etcd"\netcd_endpoints = "http://x:2379"\n', "server.etcd_endpoints must be a non-empty list"),
    ('etcd_lease_ttl = "soon"\n', "etcd_lease_ttl"),
])
def test_bad_values_name_the_file_line_and_key(tmp_path, body, message):
    with pytest.raises(AgentConfigError) as err:
        config(tmp_path, body)
    assert message in str(err.value) and "s.hcl:" in str(err.value)
