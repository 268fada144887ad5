"""The agent hands each `plugin "<driver>" { config }` to its driver and starts docker's reconciler."""

import asyncio
import textwrap

import pytest

from yurt.agent.command import build_config
from yurt.agent.config import AgentConfigError
from yurt.agent.wiring import build_client_agent


def config_file(tmp_path, text: str) -> str:
    path = tmp_path / "agent.hcl"
    path.write_text(textwrap.dedent(text))
    return str(path)


async def test_client_agent_gets_drivers_built_from_the_plugin_blocks(tmp_path):
    path = config_file(tmp_path, """
        plugin "exec" {
          config { default_pid_mode = "host" }
        }
        plugin "docker" {
          config {
            allow_privileged = true
            gc {
              dangling_containers {
                period         = "2m"
                creation_grace = "3m"
              }
            }
          }
        }
        plugin "mock_driver" {
          config { enabled = true }
        }
    """)
    cfg = build_config(["-dev", "-config", path, "-data-dir", str(tmp_path / "data")])
    client = build_client_agent(cfg)
    docker = client.drivers["docker"]
    try:
        assert client.drivers["exec"].default_pid_mode == "host"
        assert client.drivers["raw_exec"].enabled and "mock_driver" in client.drivers
        assert docker.plugin.allow_privileged and docker.plugin.dangling_creation_grace_s == 180.0
        assert docker.alloc_root == client.config.alloc_dir  # reaps only this client's containers
        reconciler = docker.start_dangling_reconciler()  # started by the wiring: the same task
        assert reconciler is not None and not reconciler.done()
    finally:
        docker.stop_dangling_reconciler()
        await asyncio.sleep(0)


async def test_a_denied_docker_driver_is_not_offered(tmp_path):
    path = config_file(tmp_path, """
        client {
          options = { "driver.denylist" = "docker" }
        }
        plugin "docker" {
          config {
            gc {
              dangling_containers { enabled = false }
            }
          }
        }
    """)
    cfg = build_config(["-dev", "-config", path, "-data-dir", str(tmp_path / "data")])
    client = build_client_agent(cfg)
    assert "docker" not in client.drivers


async def test_a_plugin_config_set_in_code_is_still_checked(tmp_path):
    cfg = build_config(["-dev", "-data-dir", str(tmp_path / "data")])
    cfg.plugins["exec"] = {"config": {"default_pid_mode": "nope"}}
    with pytest.raises(AgentConfigError, match='plugin "exec".*"default_pid_mode"'):
        build_client_agent(cfg)
