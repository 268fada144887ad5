"""Operator-level settings stored in the state (scheduler configuration)."""

import msgspec

from .base import NomadStruct

SCHEDULER_ALGORITHM_BINPACK = "binpack"
SCHEDULER_ALGORITHM_SPREAD = "spread"


class PreemptionConfig(NomadStruct):
    system_scheduler_enabled: bool = True
    sys_batch_scheduler_enabled: bool = False
    batch_scheduler_enabled: bool = False
    service_scheduler_enabled: bool = False


class SchedulerConfiguration(NomadStruct):
    scheduler_algorithm: str = SCHEDULER_ALGORITHM_BINPACK
    preemption_config: PreemptionConfig = msgspec.field(default_factory=PreemptionConfig)
    memory_oversubscription_enabled: bool = False
    reject_job_registration: bool = False
    pause_eval_broker: bool = False
    create_index: int = 0
    modify_index: int = 0
