
from yurt.client import ClientAgent, ClientConfig


def test_identity_is_created_once_and_kept(tmp_path):
    a = ClientConfig(data_dir=str(tmp_path))
    a.load_identity()
    b = ClientConfig(data_dir=str(tmp_path))
    b.load_identity()
    assert a.node_id == b.node_id and a.secret_id == b.secret_id and a.node_id != a.secret_id
    assert open(tmp_path / "client" / "node-id").read() == a.node_id
    assert a.state_db_path == str(tmp_path / "client" / "state.db")
    assert a.alloc_dir == str(tmp_path / "alloc")


def test_host_env_drops_denied_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s3cret")
    monkeypatch.setenv("HARMLESS", "1")
    env = ClientConfig(data_dir=str(tmp_path)).host_env()
    assert "VAULT_TOKEN" not in env and env["HARMLESS"] == "1"
    custom = ClientConfig(data_dir=str(tmp_path), options={"env.denylist": "HARMLESS"}).host_env()
    assert "HARMLESS" not in custom and custom["VAULT_TOKEN"] == "s3cret"


def test_driver_allow_and_deny_lists(tmp_path):
    only_raw = ClientAgent(ClientConfig(data_dir=str(tmp_path), options={"driver.allowlist": "raw_exec"}))
    assert set(only_raw.drivers) == {"raw_exec"}
    no_mock = ClientAgent(ClientConfig(data_dir=str(tmp_path), options={"driver.denylist": "mock_driver"}))
    assert "mock_driver" not in no_mock.drivers


def test_raw_exec_is_off_unless_enabled(tmp_path):
    assert not ClientAgent(ClientConfig(data_dir=str(tmp_path))).drivers["raw_exec"].fingerprint().detected
    assert ClientAgent(ClientConfig(data_dir=str(tmp_path), raw_exec_enabled=True)).drivers["raw_exec"].fingerprint().healthy
