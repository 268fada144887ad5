"""Client agent configuration, and the node identity kept in the data dir."""

import os
import socket
import uuid
from dataclasses import dataclass, field

from yurt.structs.base import SECOND

from .volumes import HostVolumeConfig

# Nomad's default `env.denylist`: host variables never passed to tasks.
DEFAULT_ENV_DENYLIST = (
    "CONSUL_TOKEN", "CONSUL_HTTP_TOKEN", "CONSUL_LICENSE", "VAULT_TOKEN", "VAULT_LICENSE",
    "NOMAD_LICENSE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS", "NOMAD_TOKEN",
)


@dataclass
class ClientConfig:
    data_dir: str
    node_name: str = ""
    datacenter: str = "dc1"
    region: str = "global"
    node_class: str = ""
    node_pool: str = "default"
    meta: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    servers: list[str] = field(default_factory=lambda: ["127.0.0.1:4646"])
    http_advertise: str = ""  # host:port of this agent's HTTP API (Node.HTTPAddr)
    raw_exec_enabled: bool = False
    mock_driver_enabled: bool = True
    reserved_cpu: int = 0  # MHz
    reserved_memory: int = 0  # MB
    reserved_disk: int = 0  # MB
    reserved_ports: str = ""  # `reserved { reserved_ports }`, e.g. "22,80,8000-8100"
    cpu_total_compute: int = 0  # MHz; 0 = fingerprinted
    memory_total_mb: int = 0  # MB; 0 = fingerprinted
    # alloc dir garbage collection (Nomad's client gc_* settings)
    gc_interval: float = 60.0  # seconds
    gc_disk_usage_threshold: float = 80.0  # percent
    gc_inode_usage_threshold: float = 70.0  # percent
    gc_max_allocs: int = 50
    gc_parallel_destroys: int = 2
    max_kill_timeout: int = 30 * SECOND
    token: str = ""
    host_volumes: dict[str, HostVolumeConfig] = field(default_factory=dict)  # `host_volume "name" {}`
    # client/devices.py: fake devices, `host_network "name" {}`, `reserved { reserved_ports }`
    devices: list = field(default_factory=list)
    host_networks: dict = field(default_factory=dict)
    reserved_ports: str = ""
    # test knobs
    heartbeat_interval: float | None = None  # seconds; None = a fraction of the server's TTL
    alloc_wait: str = "30s"  # blocking-query wait for allocations
    update_interval: float = 0.2  # seconds between batched alloc updates
    # filled by `load_identity`
    node_id: str = ""
    secret_id: str = ""

    def __post_init__(self) -> None:
        self.data_dir = os.path.abspath(self.data_dir)
        if not self.node_name:
            self.node_name = socket.gethostname()

    @property
    def client_dir(self) -> str:
        return os.path.join(self.data_dir, "client")

    @property
    def alloc_dir(self) -> str:
        return os.path.join(self.data_dir, "alloc")

    @property
    def state_dir(self) -> str:
        return self.client_dir

    @property
    def state_db_path(self) -> str:
        return os.path.join(self.client_dir, "state.db")

    @property
    def server_addresses(self) -> list[str]:
        servers = self.servers or ["127.0.0.1:4646"]
        return [s if "://" in s else f"http://{s}" for s in servers]

    @property
    def server_address(self) -> str:
        return self.server_addresses[0]

    def _option_list(self, key: str) -> list[str] | None:
        raw = self.options.get(key)
        return [item.strip() for item in raw.split(",") if item.strip()] if raw else None

    def host_env(self) -> dict[str, str]:
        """The agent's environment minus `env.denylist` (raw_exec tasks inherit it)."""
        denied = set(self._option_list("env.denylist") or DEFAULT_ENV_DENYLIST)
        return {k: v for k, v in os.environ.items() if k not in denied}

    def driver_allowed(self, name: str) -> bool:
        """Client options `driver.allowlist` / `driver.denylist` (comma-separated)."""
        allow, deny = self._option_list("driver.allowlist"), self._option_list("driver.denylist")
        return (allow is None or name in allow) and (deny is None or name not in deny)

    def load_identity(self) -> None:
        """Read the node and secret IDs from the data dir, creating them the first time."""
        os.makedirs(self.client_dir, exist_ok=True)
        self.node_id = _persisted_id(os.path.join(self.client_dir, "node-id"), self.node_id)
        self.secret_id = _persisted_id(os.path.join(self.client_dir, "secret-id"), self.secret_id)


def _persisted_id(path: str, preset: str) -> str:
    try:
        with open(path) as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = preset or str(uuid.uuid4())
    with open(path, "w") as f:
        f.write(value)
    return value
