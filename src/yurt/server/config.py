"""Server settings: where state lives, identity, scheduler and heartbeat tuning."""

from dataclasses import dataclass, field

NANOSECONDS_THRESHOLD = 1_000_000
_DURATION_FIELDS = (
    "min_heartbeat_ttl", "heartbeat_grace", "failover_heartbeat_ttl", "eval_nack_timeout",
    "eval_initial_nack_delay", "eval_subsequent_nack_delay", "failed_follow_up_delay",
    "alloc_update_batch_window", "gc_interval", "eval_gc_threshold", "batch_eval_gc_threshold",
    "job_gc_threshold", "node_gc_threshold",
)


@dataclass
class ServerConfig:
    """Settings for one server. Durations are seconds (floats), as the loops use them.

    `data_dir=None` keeps the state in memory (tests, `-dev`)."""

    data_dir: str | None = None
    region: str = "global"
    datacenter: str = "dc1"
    node_name: str = "yurt-server"
    num_schedulers: int = 2
    enabled_schedulers: list[str] = field(
        default_factory=lambda: ["service", "batch", "system", "sysbatch", "_core"]
    )
    # heartbeats (Nomad's server block: min_heartbeat_ttl, max_heartbeats_per_second, heartbeat_grace)
    min_heartbeat_ttl: float = 10.0
    max_heartbeats_per_second: float = 50.0
    heartbeat_grace: float = 10.0
    failover_heartbeat_ttl: float = 300.0
    # eval broker
    eval_nack_timeout: float = 60.0
    eval_delivery_limit: int = 3
    eval_initial_nack_delay: float = 1.0
    eval_subsequent_nack_delay: float = 20.0
    failed_follow_up_delay: float = 60.0
    # core garbage collection (Nomad's *_gc_threshold), checked every gc_interval
    gc_interval: float = 300.0
    eval_gc_threshold: float = 3600.0
    batch_eval_gc_threshold: float = 24 * 3600.0
    job_gc_threshold: float = 4 * 3600.0
    node_gc_threshold: float = 24 * 3600.0
    # client alloc updates are batched for this long into one command
    alloc_update_batch_window: float = 0.05
    # addresses advertised by /v1/agent/self, /v1/status/leader and friends
    advertise_addr: str = "127.0.0.1"
    http_port: int = 4646
    rpc_port: int = 4647
    serf_port: int = 4648
    version: str = "2.0.6"
    # HA (docs/internals.md, state): "sqlite" (embedded, the default) or "etcd"
    state_backend: str = "sqlite"
    etcd_endpoints: list[str] = field(default_factory=list)
    etcd_prefix: str = "/yurt"
    etcd_lease_ttl: float = 5.0

    def normalize(self) -> "ServerConfig":
        """Durations are seconds; a value given in nanoseconds (as agent config files parse
        `"10s"`) is converted. Nothing here is meaningfully longer than 10^6 seconds."""
        for name in _DURATION_FIELDS:
            value = getattr(self, name)
            if value >= NANOSECONDS_THRESHOLD:
                setattr(self, name, value / 1e9)
        return self

    @property
    def rpc_address(self) -> str:
        return f"{self.advertise_addr}:{self.rpc_port}"
