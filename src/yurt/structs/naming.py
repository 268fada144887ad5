"""Map snake_case Python field names to Nomad's Go (PascalCase) JSON names.

Every struct in `yurt.structs` uses `rename=nomad_name`, so Python code reads
`alloc.node_id` while the wire carries `NodeID`. Fields whose Nomad name does not
follow the rule set it explicitly with `msgspec.field(name=...)`.
"""

from functools import lru_cache

# Words Go spells in capitals (Go's initialisms as Nomad uses them).
_INITIALISMS = {
    "id": "ID",
    "ids": "IDs",
    "mb": "MB",
    "cpu": "CPU",
    "http": "HTTP",
    "https": "HTTPS",
    "tls": "TLS",
    "ip": "IP",
    "cidr": "CIDR",
    "dns": "DNS",
    "tg": "TG",
    "acl": "ACL",
    "ui": "UI",
    "url": "URL",
    "iops": "IOPS",
    "numa": "NUMA",
    "csi": "CSI",
    "ttl": "TTL",
    "uuid": "UUID",
    "os": "OS",
    "mbits": "MBits",
}


@lru_cache(maxsize=None)
def nomad_name(field: str) -> str:
    """`node_id` -> `NodeID`, `memory_max_mb` -> `MemoryMaxMB`, `l_target` -> `LTarget`."""
    return "".join(_INITIALISMS.get(part, part[:1].upper() + part[1:]) for part in field.split("_"))
