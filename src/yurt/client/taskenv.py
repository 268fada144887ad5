"""The task environment (Nomad's `taskenv`): NOMAD_* variables, ports, meta, the task's
`env` block, and `${...}` interpolation of node attributes, node meta and env vars."""

import re
from typing import Any

from yurt.structs.alloc import Allocation
from yurt.structs.job import Task
from yurt.structs.node import Node

from .allocdir import AllocDir
from .devices import device_env

_VAR = re.compile(r"\$\{([^}]+)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def clean_env_name(name: str) -> str:
    return _UNSAFE.sub("_", name)


def node_variables(node: Node | None) -> dict[str, str]:
    """`attr.*`, `node.*` and `meta.*` values usable in `${...}`."""
    if node is None:
        return {}
    out = {f"attr.{k}": v for k, v in (node.attributes or {}).items()}
    out.update({f"meta.{k}": v for k, v in (node.meta or {}).items()})
    out.update(
        {
            "node.unique.id": node.id,
            "node.unique.name": node.name,
            "node.datacenter": node.datacenter,
            "node.class": node.node_class,
            "node.pool": node.node_pool,
            "node.region": (node.attributes or {}).get("nomad.region", "global"),
        }
    )
    return out


_ENV_INDEX = re.compile(r'^env\[\s*"([^"]+)"\s*\]$')


def _lookup(key: str, variables: dict[str, str]) -> str | None:
    key = key.strip()
    if key in variables:
        return variables[key]
    m = _ENV_INDEX.match(key)  # ${env["X"]}
    if m:
        name = m.group(1)
        return variables.get(f"env.{name}", variables.get(name))
    return None


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Replace each `${name}` (or `${env["NAME"]}`) found in `variables`; unknown
    references stay as they are."""

    def sub(m: re.Match) -> str:
        value = _lookup(m.group(1), variables)
        return m.group(0) if value is None else value

    return _VAR.sub(sub, text)


def interpolate_config(value: Any, variables: dict[str, str]) -> Any:
    """Interpolate every string inside a driver config (keys and values)."""
    if isinstance(value, str):
        return interpolate(value, variables)
    if isinstance(value, list):
        return [interpolate_config(v, variables) for v in value]
    if isinstance(value, dict):
        return {interpolate(str(k), variables): interpolate_config(v, variables) for k, v in value.items()}
    return value


def _merged_meta(alloc: Allocation, task: Task) -> dict[str, str]:
    meta: dict[str, str] = {}
    job = alloc.job
    if job is not None:
        meta.update(job.meta or {})
        group = job.lookup_task_group(alloc.task_group)
        if group is not None:
            meta.update(group.meta or {})
    meta.update(task.meta or {})
    return meta


def _port_env(alloc: Allocation, task: Task) -> dict[str, str]:
    env: dict[str, str] = {}
    resources = alloc.allocated_resources
    if resources is None:
        return env
    mappings = list(resources.shared.ports or ())
    task_res = resources.tasks.get(task.name)
    networks = [*(resources.shared.networks or ()), *((task_res.networks or ()) if task_res else ())]
    seen = {m.label for m in mappings}
    for net in networks:
        for port in [*(net.reserved_ports or ()), *(net.dynamic_ports or ())]:
            if port.label not in seen:
                mappings.append(_mapping(port.label, port.value, port.to, net.ip))
    for m in mappings:
        label = clean_env_name(m.label)
        inside = m.to if m.to > 0 else m.value
        env[f"NOMAD_PORT_{label}"] = str(inside)
        env[f"NOMAD_HOST_PORT_{label}"] = str(m.value)
        env[f"NOMAD_IP_{label}"] = m.host_ip
        env[f"NOMAD_HOST_IP_{label}"] = m.host_ip
        env[f"NOMAD_ADDR_{label}"] = f"{m.host_ip}:{m.value}"
        env[f"NOMAD_HOST_ADDR_{label}"] = f"{m.host_ip}:{m.value}"
        env[f"NOMAD_ALLOC_PORT_{label}"] = str(inside)
        env[f"NOMAD_ALLOC_IP_{label}"] = m.host_ip
        env[f"NOMAD_ALLOC_ADDR_{label}"] = f"{m.host_ip}:{inside}"
    return env


def _mapping(label: str, value: int, to: int, ip: str):
    from yurt.structs.alloc import AllocatedPortMapping

    return AllocatedPortMapping(label=label, value=value, to=to, host_ip=ip)


def _resource_env(alloc: Allocation, task: Task) -> dict[str, str]:
    env: dict[str, str] = {}
    res = alloc.allocated_resources.tasks.get(task.name) if alloc.allocated_resources else None
    cpu = res.cpu.cpu_shares if res else (task.resources.cpu if task.resources else 0)
    mem = res.memory.memory_mb if res else (task.resources.memory_mb if task.resources else 0)
    mem_max = res.memory.memory_max_mb if res else (task.resources.memory_max_mb if task.resources else 0)
    env["NOMAD_CPU_LIMIT"] = str(cpu)
    env["NOMAD_MEMORY_LIMIT"] = str(mem)
    if mem_max:
        env["NOMAD_MEMORY_MAX_LIMIT"] = str(mem_max)
    if res and res.cpu.reserved_cores:
        env["NOMAD_CPU_CORES"] = ",".join(str(c) for c in res.cpu.reserved_cores)
    if res and res.devices:
        env.update(device_env(res.devices))
    return env


def nomad_env(alloc: Allocation, task: Task, node: Node | None, alloc_dir: AllocDir) -> dict[str, str]:
    """The NOMAD_* variables of reference 1.4 for one task."""
    job = alloc.job
    env = {
        "NOMAD_ALLOC_DIR": alloc_dir.shared_dir,
        "NOMAD_TASK_DIR": alloc_dir.local_dir(task.name),
        "NOMAD_SECRETS_DIR": alloc_dir.secrets_dir(task.name),
        "NOMAD_ALLOC_ID": alloc.id,
        "NOMAD_SHORT_ALLOC_ID": alloc.id[:8],
        "NOMAD_ALLOC_NAME": alloc.name,
        "NOMAD_ALLOC_INDEX": str(alloc.index),
        "NOMAD_TASK_NAME": task.name,
        "NOMAD_GROUP_NAME": alloc.task_group,
        "NOMAD_JOB_ID": alloc.job_id,
        "NOMAD_JOB_NAME": job.name if job else alloc.job_id,
        "NOMAD_NAMESPACE": alloc.namespace,
        "NOMAD_REGION": job.region if job else "global",
        "NOMAD_DC": node.datacenter if node else "",
    }
    if job is not None and job.parent_id:
        env["NOMAD_JOB_PARENT_ID"] = job.parent_id
    env.update(_resource_env(alloc, task))
    env.update(_port_env(alloc, task))
    for key, value in _merged_meta(alloc, task).items():
        env[f"NOMAD_META_{clean_env_name(key)}"] = value
        env[f"NOMAD_META_{clean_env_name(key).upper()}"] = value
    return env


def build_task_env(
    alloc: Allocation,
    task: Task,
    node: Node | None,
    alloc_dir: AllocDir,
    host_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Host env (raw_exec has no isolation), then NOMAD_*, then the task's interpolated `env`."""
    env = dict(host_env or {})
    env.update(nomad_env(alloc, task, node, alloc_dir))
    variables = {**node_variables(node), "node.region": env["NOMAD_REGION"], **env}
    for key, value in (task.env or {}).items():
        env[interpolate(key, variables)] = interpolate(str(value), variables)
    return env


def interpolation_variables(env: dict[str, str], node: Node | None) -> dict[str, str]:
    """What `${...}` in a driver config may reference: node values and the task env."""
    region = {"node.region": env["NOMAD_REGION"]} if "NOMAD_REGION" in env else {}
    return {**node_variables(node), **region, **env, **{f"env.{k}": v for k, v in env.items()}}
