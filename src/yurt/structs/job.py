"""Jobs, task groups, tasks and the blocks inside them, with Nomad's JSON names.

Defaults here are the zero values Nomad's API structs have; `yurt.structs.defaults`
fills in the defaults Nomad applies when a job is registered (canonicalization).
"""

from typing import Any

import msgspec

from .base import NomadStruct

JOB_TYPE_SERVICE = "service"
JOB_TYPE_BATCH = "batch"
JOB_TYPE_SYSTEM = "system"
JOB_TYPE_SYSBATCH = "sysbatch"
JOB_TYPES = (JOB_TYPE_SERVICE, JOB_TYPE_BATCH, JOB_TYPE_SYSTEM, JOB_TYPE_SYSBATCH)

JOB_STATUS_PENDING = "pending"
JOB_STATUS_RUNNING = "running"
JOB_STATUS_DEAD = "dead"


class Constraint(NomadStruct):
    l_target: str = ""
    r_target: str = ""
    operand: str = "="


class Affinity(NomadStruct):
    l_target: str = ""
    r_target: str = ""
    operand: str = "="
    weight: int = 50


class SpreadTarget(NomadStruct):
    value: str = ""
    percent: int = 0


class Spread(NomadStruct):
    attribute: str = ""
    weight: int = 50
    spread_target: list[SpreadTarget] | None = None


class Port(NomadStruct):
    label: str = ""
    value: int = 0
    to: int = 0
    host_network: str = "default"
    ignore_collision: bool = False


class DNSConfig(NomadStruct):
    servers: list[str] | None = None
    searches: list[str] | None = None
    options: list[str] | None = None


class NetworkResource(NomadStruct):
    mode: str = ""
    device: str = ""
    cidr: str = ""
    ip: str = ""
    hostname: str = ""
    mbits: int = 0
    dns: DNSConfig | None = None
    cni: dict[str, Any] | None = msgspec.field(default=None, name="CNI")
    reserved_ports: list[Port] | None = None
    dynamic_ports: list[Port] | None = None


class RequestedDevice(NomadStruct):
    name: str = ""
    count: int = 1
    constraints: list[Constraint] | None = None
    affinities: list[Affinity] | None = None


class Resources(NomadStruct):
    cpu: int = 0
    cores: int = 0
    memory_mb: int = 0
    memory_max_mb: int = 0
    disk_mb: int = 0
    iops: int = 0
    secrets_mb: int = 0
    networks: list[NetworkResource] | None = None
    devices: list[RequestedDevice] | None = None
    numa: dict[str, Any] | None = None


class RestartPolicy(NomadStruct):
    attempts: int = 0
    interval: int = 0
    delay: int = 0
    mode: str = ""
    render_templates: bool = False


class ReschedulePolicy(NomadStruct):
    attempts: int = 0
    interval: int = 0
    delay: int = 0
    delay_function: str = ""
    max_delay: int = 0
    unlimited: bool = False


class LogConfig(NomadStruct):
    max_files: int = 10
    max_file_size_mb: int = msgspec.field(default=10, name="MaxFileSizeMB")
    disabled: bool = False


class EphemeralDisk(NomadStruct):
    sticky: bool = False
    size_mb: int = msgspec.field(default=300, name="SizeMB")
    migrate: bool = False


class UpdateStrategy(NomadStruct):
    stagger: int = 0
    max_parallel: int = 0
    health_check: str = ""
    min_healthy_time: int = 0
    healthy_deadline: int = 0
    progress_deadline: int = 0
    auto_revert: bool = False
    auto_promote: bool = False
    canary: int = 0


class MigrateStrategy(NomadStruct):
    max_parallel: int = 1
    health_check: str = "checks"
    min_healthy_time: int = 0
    healthy_deadline: int = 0


class TaskLifecycle(NomadStruct):
    hook: str = ""
    sidecar: bool = False


class DispatchPayloadConfig(NomadStruct):
    file: str = ""


class Disconnect(NomadStruct):
    lost_after: int = 0
    stop_on_client_after: int | None = None
    replace: bool | None = None
    reconcile: str = ""


class PeriodicConfig(NomadStruct):
    enabled: bool = True
    spec: str = ""
    specs: list[str] | None = None
    spec_type: str = "cron"
    prohibit_overlap: bool = False
    time_zone: str = "UTC"


class ParameterizedJobConfig(NomadStruct):
    payload: str = "optional"
    meta_required: list[str] | None = None
    meta_optional: list[str] | None = None


class Task(NomadStruct):
    name: str = ""
    driver: str = ""
    user: str = ""
    lifecycle: TaskLifecycle | None = None
    config: dict[str, Any] | None = None
    constraints: list[Constraint] | None = None
    affinities: list[Affinity] | None = None
    env: dict[str, str] | None = None
    services: list[dict[str, Any]] | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    meta: dict[str, str] | None = None
    kill_timeout: int = 0
    log_config: LogConfig | None = None
    artifacts: list[dict[str, Any]] | None = None
    vault: dict[str, Any] | None = None
    templates: list[dict[str, Any]] | None = None
    dispatch_payload: DispatchPayloadConfig | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    leader: bool = False
    shutdown_delay: int = 0
    kill_signal: str = ""
    kind: str = ""
    scaling_policies: list[dict[str, Any]] | None = None
    identities: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    csi_plugin_config: dict[str, Any] | None = msgspec.field(default=None, name="CSIPluginConfig")
    consul: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    secrets: list[dict[str, Any]] | None = None


class TaskGroup(NomadStruct):
    name: str = ""
    count: int = 1
    update: UpdateStrategy | None = None
    migrate: MigrateStrategy | None = None
    constraints: list[Constraint] | None = None
    scaling: dict[str, Any] | None = None
    restart_policy: RestartPolicy | None = None
    tasks: list[Task] | None = None
    ephemeral_disk: EphemeralDisk | None = None
    meta: dict[str, str] | None = None
    reschedule_policy: ReschedulePolicy | None = None
    affinities: list[Affinity] | None = None
    spreads: list[Spread] | None = None
    networks: list[NetworkResource] | None = None
    consul: dict[str, Any] | None = None
    services: list[dict[str, Any]] | None = None
    volumes: dict[str, Any] | None = None
    shutdown_delay: int | None = None
    stop_after_client_disconnect: int | None = None
    max_client_disconnect: int | None = None
    disconnect: Disconnect | None = None
    prevent_reschedule_on_lost: bool = False
    max_run_duration: int | None = None


class Job(NomadStruct):
    region: str = "global"
    namespace: str = "default"
    id: str = ""
    parent_id: str = ""
    name: str = ""
    type: str = JOB_TYPE_SERVICE
    priority: int = 50
    all_at_once: bool = False
    datacenters: list[str] | None = None
    node_pool: str = "default"
    constraints: list[Constraint] | None = None
    affinities: list[Affinity] | None = None
    spreads: list[Spread] | None = None
    task_groups: list[TaskGroup] | None = None
    update: UpdateStrategy | None = None
    multiregion: dict[str, Any] | None = None
    periodic: PeriodicConfig | None = None
    parameterized_job: ParameterizedJobConfig | None = None
    dispatched: bool = False
    dispatch_idempotency_token: str = ""
    payload: bytes | None = None
    meta: dict[str, str] | None = None
    consul_token: str = ""
    consul_namespace: str = ""
    vault_token: str = ""
    vault_namespace: str = ""
    nomad_token_id: str = ""
    status: str = ""
    status_description: str = ""
    stable: bool = False
    version: int = 0
    submit_time: int = 0
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0
    stop: bool = False
    ui: dict[str, Any] | None = None

    def lookup_task_group(self, name: str) -> TaskGroup | None:
        for tg in self.task_groups or ():
            if tg.name == name:
                return tg
        return None

    @property
    def is_periodic(self) -> bool:
        return self.periodic is not None and self.periodic.enabled

    @property
    def is_parameterized(self) -> bool:
        return self.parameterized_job is not None and not self.dispatched
