"""The HA log backend: the command log and snapshots in an etcd cluster (v3 JSON gateway)."""

from .gateway import EtcdError, EtcdUnavailable  # noqa: F401
from .log import EtcdLog, LogConflict, NotLeaderError  # noqa: F401
