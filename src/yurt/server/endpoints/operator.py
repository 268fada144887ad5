"""Operator settings: the scheduler configuration."""

from yurt.structs import SchedulerConfiguration

from .errors import EndpointError

ALGORITHMS = ("binpack", "spread")


def set_scheduler_config(server, config: SchedulerConfiguration, cas: int | None = None) -> tuple[bool, int]:
    """Store the configuration; with `cas`, only if the stored ModifyIndex equals it."""
    from yurt.state.commands import SchedulerConfigSet

    if config.scheduler_algorithm not in ALGORITHMS:
        raise EndpointError(
            400, f"invalid scheduler algorithm: {config.scheduler_algorithm!r}, must be one of binpack or spread"
        )
    snapshot = server.state.snapshot()
    if cas is not None:
        current = snapshot.scheduler_config()
        if current.modify_index != cas:
            return False, snapshot.table_index("scheduler_config")
    index = server.state.apply(SchedulerConfigSet(config=config))
    return True, index
