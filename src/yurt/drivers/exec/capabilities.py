"""Linux capabilities for exec/java tasks: Nomad's default set, `cap_add`, `cap_drop`.

The task's bounding set is reduced to the resulting set before it execs, so a task
running as root holds at most these; a task running as another user holds none.
"""

CAPABILITIES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)  # index = capability number
NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}

# Nomad's exec/java default `allow_caps` (drivers/shared/capabilities.NomadDefaults)
DEFAULT_CAPS = (
    "audit_write", "chown", "dac_override", "fowner", "fsetid", "kill", "mknod",
    "net_bind_service", "setfcap", "setgid", "setpcap", "setuid", "sys_chroot",
)


def normalize(name: str) -> str:
    text = str(name).strip().lower()
    return text[4:] if text.startswith("cap_") else text


def unknown_caps(names: list[str]) -> list[str]:
    return [n for n in names if normalize(n) != "all" and normalize(n) not in NUMBERS]


def effective_caps(cap_add: list[str] | None, cap_drop: list[str] | None, allowed: tuple[str, ...] = DEFAULT_CAPS) -> set[str]:
    """The capability names the task keeps; raises ValueError naming a cap not allowed."""
    add = {normalize(n) for n in cap_add or []}
    drop = {normalize(n) for n in cap_drop or []}
    caps = set() if "all" in drop else set(DEFAULT_CAPS) - drop
    if "all" in add:
        add = set(allowed)
    refused = sorted(add - set(allowed))
    if refused:
        raise ValueError(f'cap_add: capabilities not allowed by the driver: {", ".join(refused)}')
    return caps | add


def cap_numbers(names: set[str]) -> list[int]:
    return sorted(NUMBERS[n] for n in names if n in NUMBERS)
