"""The jobspec block tree: which attributes and blocks each block takes, and the JSON
(API) name each one gets. Mirrors the `hcl:"..."` tags of Nomad's `api` package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Value kinds an attribute may have (checked by `hcl_decode.convert_value`).
STRING, INT, BOOL, DURATION, NUMBER = "string", "int", "bool", "duration", "number"
STRINGS, STRINGMAP, ANY = "strings", "stringmap", "any"


@dataclass(frozen=True)
class Attr:
    json: str
    kind: str = STRING


@dataclass(frozen=True)
class Blk:
    json: str
    schema: "Schema"
    repeat: bool = False
    label: str | None = None  # the JSON key the block's label is stored under
    keyed: bool = False       # repeated blocks gathered in a dict keyed by label


@dataclass(frozen=True)
class Schema:
    name: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: dict[str, Blk] = field(default_factory=dict)
    # "strict": only the names above; "freeform": any attribute kept under its HCL name
    # (driver config); "stringmap": any attribute, string values (env, meta);
    # "opaque": any attribute or block, names converted to Nomad's PascalCase.
    mode: str = "strict"
    post: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def attrs(**kinds: tuple[str, str] | str) -> dict[str, Attr]:
    """`attrs(name=("JSONName", kind))`; a bare kind means the PascalCase name."""
    from yurt.structs.naming import nomad_name

    out = {}
    for name, spec in kinds.items():
        out[name] = Attr(*spec) if isinstance(spec, tuple) else Attr(nomad_name(name), spec)
    return out


FREEFORM = Schema("config", mode="freeform")
STRING_MAP = Schema("map", mode="stringmap")
OPAQUE = Schema("block", mode="opaque")


# -- placement --------------------------------------------------------------------------
_CONSTRAINT_SHORTHANDS = ("version", "semver", "regexp", "set_contains",
                          "set_contains_any", "set_contains_all")


def _constraint_shorthands(data: dict[str, Any]) -> dict[str, Any]:
    for name in _CONSTRAINT_SHORTHANDS:
        key = "_" + name
        if key in data:
            data["Operand"], data["RTarget"] = name, data.pop(key)
    if "_distinct_hosts" in data:  # `distinct_hosts = false` is kept as RTarget "false", as Nomad does
        data["Operand"] = "distinct_hosts"
        data["RTarget"] = "true" if data.pop("_distinct_hosts") else "false"
    if "_distinct_property" in data:
        data["Operand"], data["LTarget"] = "distinct_property", data.pop("_distinct_property")
    return data


CONSTRAINT = Schema(
    "constraint",
    attrs(attribute=("LTarget", STRING), value=("RTarget", STRING), operator=("Operand", STRING),
          distinct_hosts=("_distinct_hosts", BOOL), distinct_property=("_distinct_property", STRING),
          **{name: ("_" + name, STRING) for name in _CONSTRAINT_SHORTHANDS}),
    post=_constraint_shorthands,
)
AFFINITY = Schema("affinity", attrs(attribute=("LTarget", STRING), value=("RTarget", STRING),
                                    operator=("Operand", STRING), weight=INT))
SPREAD_TARGET = Schema("target", attrs(percent=INT))
SPREAD = Schema("spread", attrs(attribute=STRING, weight=INT),
                {"target": Blk("SpreadTarget", SPREAD_TARGET, repeat=True, label="Value")})


def _placement_blocks() -> dict[str, Blk]:
    return {"constraint": Blk("Constraints", CONSTRAINT, repeat=True),
            "affinity": Blk("Affinities", AFFINITY, repeat=True)}


# -- network and resources --------------------------------------------------------------
def _split_ports(data: dict[str, Any]) -> dict[str, Any]:
    for port in data.pop("_Ports", []):
        key = "ReservedPorts" if port.get("Value") else "DynamicPorts"
        data.setdefault(key, []).append(port)
    return data


PORT = Schema("port", attrs(static=("Value", INT), to=INT, host_network=STRING,
                            ignore_collision=BOOL))
DNS = Schema("dns", attrs(servers=STRINGS, searches=STRINGS, options=STRINGS))
NETWORK = Schema(
    "network",
    attrs(mode=STRING, hostname=STRING, mbits=INT, device=STRING, cidr=STRING, ip=STRING),
    {"port": Blk("_Ports", PORT, repeat=True, label="Label"),
     "reserved_ports": Blk("ReservedPorts", PORT, repeat=True, label="Label"),
     "dns": Blk("DNS", DNS), "cni": Blk("CNI", Schema("cni", attrs(args=STRINGMAP)))},
    post=_split_ports,
)
DEVICE = Schema("device", attrs(count=INT), _placement_blocks())
NUMA = Schema("numa", attrs(affinity=STRING, devices=STRINGS))
RESOURCES = Schema(
    "resources",
    attrs(cpu=("CPU", INT), cores=INT, memory=("MemoryMB", INT), memory_max=("MemoryMaxMB", INT),
          disk=("DiskMB", INT), iops=("IOPS", INT), secrets=("SecretsMB", INT)),
    {"network": Blk("Networks", NETWORK, repeat=True),
     "device": Blk("Devices", DEVICE, repeat=True, label="Name"),
     "numa": Blk("NUMA", NUMA)},
)

# -- policies ---------------------------------------------------------------------------
RESTART = Schema("restart", attrs(attempts=INT, interval=DURATION, delay=DURATION, mode=STRING,
                                  render_templates=BOOL))
RESCHEDULE = Schema("reschedule", attrs(attempts=INT, interval=DURATION, delay=DURATION,
                                        delay_function=STRING, max_delay=DURATION, unlimited=BOOL))
UPDATE = Schema("update", attrs(max_parallel=INT, health_check=STRING, min_healthy_time=DURATION,
                                healthy_deadline=DURATION, progress_deadline=DURATION,
                                canary=INT, auto_revert=BOOL, auto_promote=BOOL, stagger=DURATION))
MIGRATE = Schema("migrate", attrs(max_parallel=INT, health_check=STRING,
                                  min_healthy_time=DURATION, healthy_deadline=DURATION))
DISCONNECT = Schema("disconnect", attrs(lost_after=DURATION, stop_on_client_after=DURATION,
                                        replace=BOOL, reconcile=STRING))
EPHEMERAL_DISK = Schema("ephemeral_disk", attrs(size=("SizeMB", INT), sticky=BOOL, migrate=BOOL))


def _logs_enabled(data: dict[str, Any]) -> dict[str, Any]:
    if "_enabled" in data:
        enabled = data.pop("_enabled")
        data.setdefault("Disabled", not enabled)
    return data


LOGS = Schema("logs", attrs(max_files=INT, max_file_size=("MaxFileSizeMB", INT), disabled=BOOL,
                            enabled=("_enabled", BOOL)), post=_logs_enabled)


def _periodic_specs(data: dict[str, Any]) -> dict[str, Any]:
    if "Spec" in data or "Specs" in data:
        data.setdefault("SpecType", "cron")
    return data


PERIODIC = Schema("periodic", attrs(cron=("Spec", STRING), crons=("Specs", STRINGS), enabled=BOOL,
                                    prohibit_overlap=BOOL, time_zone=STRING), post=_periodic_specs)
PARAMETERIZED = Schema("parameterized", attrs(payload=STRING, meta_required=STRINGS,
                                              meta_optional=STRINGS))
SCALING = Schema("scaling", attrs(min=INT, max=INT, enabled=BOOL, type=STRING, policy=("Policy", ANY)),
                 {"policy": Blk("Policy", FREEFORM)})

# -- services ---------------------------------------------------------------------------
CHECK_RESTART = Schema("check_restart", attrs(limit=INT, grace=DURATION, ignore_warnings=BOOL))
CHECK = Schema(
    "check",
    attrs(name=STRING, type=STRING, command=STRING, args=STRINGS, path=STRING, method=STRING,
          body=STRING, protocol=STRING, port=("PortLabel", STRING), expose=BOOL,
          address_mode=STRING, advertise=STRING, interval=DURATION, timeout=DURATION,
          initial_status=STRING, notes=STRING, tls_server_name=("TLSServerName", STRING),
          tls_skip_verify=("TLSSkipVerify", BOOL), grpc_service=("GRPCService", STRING),
          grpc_use_tls=("GRPCUseTLS", BOOL), task=("TaskName", STRING),
          success_before_passing=INT, failures_before_critical=INT,
          failures_before_warning=INT, on_update=STRING, header=("Header", ANY)),
    {"check_restart": Blk("CheckRestart", CHECK_RESTART), "header": Blk("Header", FREEFORM)},
)
IDENTITY = Schema("identity", attrs(name=STRING, aud=("Audience", STRINGS), env=BOOL, file=BOOL,
                                    filepath=STRING, ttl=("TTL", DURATION), change_mode=STRING,
                                    change_signal=STRING, service_name=STRING,
                                    extra_claims=STRINGMAP))
SERVICE = Schema(
    "service",
    attrs(name=STRING, provider=STRING, port=("PortLabel", STRING), tags=STRINGS,
          canary_tags=STRINGS, enable_tag_override=BOOL, address=STRING, address_mode=STRING,
          task=("TaskName", STRING), on_update=STRING, cluster=STRING, kind=STRING,
          meta=STRINGMAP, canary_meta=STRINGMAP, tagged_addresses=STRINGMAP),
    {"check": Blk("Checks", CHECK, repeat=True), "check_restart": Blk("CheckRestart", CHECK_RESTART),
     "meta": Blk("Meta", STRING_MAP),  # "connect" is added below, after TASK
     "canary_meta": Blk("CanaryMeta", STRING_MAP), "tagged_addresses": Blk("TaggedAddresses", STRING_MAP),
     "identity": Blk("Identity", IDENTITY),
     "weights": Blk("Weights", Schema("weights", attrs(passing=INT, warning=INT)))},
)

# -- task pieces ------------------------------------------------------------------------
TEMPLATE = Schema(
    "template",
    attrs(source=("SourcePath", STRING), destination=("DestPath", STRING),
          data=("EmbeddedTmpl", STRING), change_mode=STRING, change_signal=STRING,
          splay=DURATION, perms=STRING, uid=("Uid", INT), gid=("Gid", INT),
          left_delimiter=("LeftDelim", STRING), right_delimiter=("RightDelim", STRING),
          env=("Envvars", BOOL), once=BOOL, vault_grace=DURATION,
          error_on_missing_key=("ErrMissingKey", BOOL)),
    {"wait": Blk("Wait", Schema("wait", attrs(min=DURATION, max=DURATION))),
     "change_script": Blk("ChangeScript", Schema("change_script", attrs(
         command=STRING, args=STRINGS, timeout=DURATION, fail_on_error=BOOL, run_on_first_render=BOOL)))},
)
ARTIFACT = Schema(
    "artifact",
    attrs(source=("GetterSource", STRING), destination=("RelativeDest", STRING),
          mode=("GetterMode", STRING), insecure=("GetterInsecure", BOOL), chown=BOOL,
          options=("GetterOptions", STRINGMAP), headers=("GetterHeaders", STRINGMAP)),
    {"options": Blk("GetterOptions", STRING_MAP), "headers": Blk("GetterHeaders", STRING_MAP)},
)
VAULT = Schema("vault", attrs(role=STRING, policies=STRINGS, namespace=STRING, cluster=STRING,
                              env=BOOL, disable_file=BOOL, change_mode=STRING, change_signal=STRING,
                              allow_token_expiration=BOOL))
CONSUL = Schema("consul", attrs(namespace=STRING, cluster=STRING, partition=STRING))
VOLUME_MOUNT = Schema("volume_mount", attrs(volume=STRING, destination=STRING, read_only=BOOL,
                                            propagation_mode=STRING,
                                            selinux_label=("SELinuxLabel", STRING)))
VOLUME = Schema(
    "volume",
    attrs(type=STRING, source=STRING, read_only=BOOL, sticky=BOOL, per_alloc=BOOL,
          access_mode=STRING, attachment_mode=STRING),
    {"mount_options": Blk("MountOptions", Schema("mount_options", attrs(
        fs_type=("FSType", STRING), mount_flags=STRINGS)))},
)
LIFECYCLE = Schema("lifecycle", attrs(hook=STRING, sidecar=BOOL))
DISPATCH_PAYLOAD = Schema("dispatch_payload", attrs(file=STRING))
CSI_PLUGIN = Schema("csi_plugin", attrs(id=("ID", STRING), type=STRING, mount_dir=STRING,
                                        stage_publish_base_dir=STRING, health_timeout=DURATION))
ACTION = Schema("action", attrs(command=STRING, args=STRINGS))
SECRET = Schema("secret", attrs(provider=STRING, path=STRING, env=STRINGMAP),
                {"config": Blk("Config", FREEFORM), "env": Blk("Env", STRING_MAP)})

SCHEDULE = Schema("schedule", blocks={"cron": Blk("Cron", Schema(
    "cron", attrs(start=STRING, end=STRING, timezone=STRING)))})

TASK = Schema(
    "task",
    attrs(driver=STRING, user=STRING, kill_timeout=DURATION, kill_signal=STRING,
          shutdown_delay=DURATION, leader=BOOL, kind=STRING, env=STRINGMAP, meta=STRINGMAP,
          config=("Config", ANY)),
    {"config": Blk("Config", FREEFORM), "env": Blk("Env", STRING_MAP), "meta": Blk("Meta", STRING_MAP),
     "resources": Blk("Resources", RESOURCES), "restart": Blk("RestartPolicy", RESTART),
     "logs": Blk("LogConfig", LOGS), "service": Blk("Services", SERVICE, repeat=True),
     "artifact": Blk("Artifacts", ARTIFACT, repeat=True),
     "template": Blk("Templates", TEMPLATE, repeat=True), "vault": Blk("Vault", VAULT),
     "consul": Blk("Consul", CONSUL), "lifecycle": Blk("Lifecycle", LIFECYCLE),
     "dispatch_payload": Blk("DispatchPayload", DISPATCH_PAYLOAD),
     "volume_mount": Blk("VolumeMounts", VOLUME_MOUNT, repeat=True),
     "csi_plugin": Blk("CSIPluginConfig", CSI_PLUGIN),
     "identity": Blk("Identities", IDENTITY, repeat=True),
     "action": Blk("Actions", ACTION, repeat=True, label="Name"),
     "secret": Blk("Secrets", SECRET, repeat=True, label="Name"),
     "scaling": Blk("ScalingPolicies", SCALING, repeat=True, label="_Label"),  # see scaling_rules
     "schedule": Blk("Schedule", SCHEDULE),
     **_placement_blocks()},
)

from .schema_connect import connect_schema  # noqa: E402  (it needs the task blocks above)

SERVICE.blocks["connect"] = Blk("Connect", connect_schema(TASK.blocks))

GROUP = Schema(
    "group",
    attrs(count=INT, shutdown_delay=DURATION, max_run_duration=DURATION,
          stop_after_client_disconnect=DURATION, max_client_disconnect=DURATION,
          prevent_reschedule_on_lost=BOOL, meta=STRINGMAP),
    {"task": Blk("Tasks", TASK, repeat=True, label="Name"),
     "volume": Blk("Volumes", VOLUME, repeat=True, label="Name", keyed=True),
     "restart": Blk("RestartPolicy", RESTART), "reschedule": Blk("ReschedulePolicy", RESCHEDULE),
     "disconnect": Blk("Disconnect", DISCONNECT), "ephemeral_disk": Blk("EphemeralDisk", EPHEMERAL_DISK),
     "update": Blk("Update", UPDATE), "migrate": Blk("Migrate", MIGRATE),
     "network": Blk("Networks", NETWORK, repeat=True),
     "service": Blk("Services", SERVICE, repeat=True), "meta": Blk("Meta", STRING_MAP),
     "scaling": Blk("Scaling", SCALING), "consul": Blk("Consul", CONSUL),
     "spread": Blk("Spreads", SPREAD, repeat=True), "vault": Blk("_Vault", VAULT),
     "secret": Blk("_Secrets", SECRET, repeat=True, label="Name"), **_placement_blocks()},
)

UI = Schema("ui", attrs(description=STRING),
            {"link": Blk("Links", Schema("link", attrs(label=STRING, url=("URL", STRING))), repeat=True)})

MULTIREGION = Schema("multiregion", blocks={
    "strategy": Blk("Strategy", Schema("strategy", attrs(max_parallel=INT, on_failure=STRING))),
    "region": Blk("Regions", Schema("region", attrs(count=INT, datacenters=STRINGS, node_pool=STRING,
                                                    meta=STRINGMAP),
                                    {"meta": Blk("Meta", STRING_MAP)}), repeat=True, label="Name"),
})

JOB = Schema(
    "job",
    attrs(region=STRING, namespace=STRING, id=("ID", STRING), name=STRING, type=STRING,
          priority=INT, all_at_once=BOOL, datacenters=STRINGS, node_pool=STRING,
          vault_token=STRING, consul_token=STRING, consul_namespace=STRING,
          vault_namespace=STRING, meta=STRINGMAP),
    {"group": Blk("TaskGroups", GROUP, repeat=True, label="Name"),
     "task": Blk("_Tasks", TASK, repeat=True, label="Name"),
     "update": Blk("Update", UPDATE), "periodic": Blk("Periodic", PERIODIC),
     "parameterized": Blk("ParameterizedJob", PARAMETERIZED),
     "reschedule": Blk("Reschedule", RESCHEDULE), "migrate": Blk("Migrate", MIGRATE),
     "meta": Blk("Meta", STRING_MAP), "ui": Blk("UI", UI), "vault": Blk("Vault", VAULT),
     "multiregion": Blk("Multiregion", MULTIREGION), "secret": Blk("Secrets", SECRET, repeat=True, label="Name"),
     "spread": Blk("Spreads", SPREAD, repeat=True), **_placement_blocks()},
)
