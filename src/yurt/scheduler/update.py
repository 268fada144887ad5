"""Whether a job change can be applied to a running alloc in place (Nomad's `tasksUpdated`).

A destructive update (stop + place) is needed when anything the task runs with
changes: drivers, config, env, artifacts, templates, combined meta, resources,
networks and ports, ephemeral disk, volumes, affinities, spreads, Consul namespace
or cluster. Count, update/restart/reschedule policies, services (without Connect),
kill timeout, priority and constraints (rechecked on the node) are applied in place.
"""

from __future__ import annotations

from typing import Any

import msgspec

from yurt.structs import Job, NetworkResource, Task, TaskGroup


def _same(a: Any, b: Any) -> bool:
    return msgspec.to_builtins(a) == msgspec.to_builtins(b)


def _port_map(net: NetworkResource) -> list[tuple]:
    out = [(p.label, p.value, p.to, p.host_network) for p in net.reserved_ports or ()]
    out += [(p.label, -1, p.to, p.host_network) for p in net.dynamic_ports or ()]
    return out


def networks_updated(a: list[NetworkResource] | None, b: list[NetworkResource] | None) -> bool:
    a, b = a or [], b or []
    if len(a) != len(b):
        return True
    for an, bn in zip(a, b):
        if (an.mode, an.mbits, an.hostname) != (bn.mode, bn.mbits, bn.hostname):
            return True
        if not _same(an.dns, bn.dns) or _port_map(an) != _port_map(bn):
            return True
    return False


def combined_task_meta(job: Job, tg: TaskGroup, task: Task) -> dict[str, str]:
    return {**(job.meta or {}), **(tg.meta or {}), **(task.meta or {})}


def _affinities(job: Job, tg: TaskGroup) -> list:
    out = list(job.affinities or ()) + list(tg.affinities or ())
    for t in tg.tasks or ():
        out += list(t.affinities or ())
    return out


def _consul_key(consul: dict | None) -> tuple:
    consul = consul or {}
    return (consul.get("Namespace", ""), consul.get("Cluster", ""), consul.get("Partition", ""))


def _resources_updated(a: Task, b: Task) -> bool:
    ra, rb = a.resources, b.resources
    if ra is None or rb is None:
        return ra is not rb
    if (ra.cpu, ra.cores, ra.memory_mb, ra.memory_max_mb, ra.secrets_mb) != (
        rb.cpu, rb.cores, rb.memory_mb, rb.memory_max_mb, rb.secrets_mb
    ):
        return True
    return not _same(ra.devices, rb.devices) or networks_updated(ra.networks, rb.networks)


def _task_updated(job_a: Job, tg_a: TaskGroup, at: Task, job_b: Job, tg_b: TaskGroup, bt: Task) -> bool:
    if (at.driver, at.user) != (bt.driver, bt.user):
        return True
    for field in ("config", "env", "artifacts", "vault", "templates", "csi_plugin_config", "volume_mounts",
                  "identities"):
        if not _same(getattr(at, field), getattr(bt, field)):
            return True
    if _consul_key(at.consul) != _consul_key(bt.consul):
        return True
    if combined_task_meta(job_a, tg_a, at) != combined_task_meta(job_b, tg_b, bt):
        return True
    if _resources_updated(at, bt):
        return True
    log_a = at.log_config.disabled if at.log_config else False
    log_b = bt.log_config.disabled if bt.log_config else False
    if log_a != log_b:
        return True
    render_a = bool(at.restart_policy and at.restart_policy.render_templates)
    render_b = bool(bt.restart_policy and bt.restart_policy.render_templates)
    return render_a != render_b


def tasks_updated(job_a: Job, job_b: Job, group: str) -> bool:
    """True when moving an alloc of `group` from `job_a` to `job_b` needs a new alloc."""
    tg_a, tg_b = job_a.lookup_task_group(group), job_b.lookup_task_group(group)
    if tg_a is None or tg_b is None:
        return True
    tasks_a, tasks_b = tg_a.tasks or [], tg_b.tasks or []
    if len(tasks_a) != len(tasks_b):
        return True
    if not _same(tg_a.ephemeral_disk, tg_b.ephemeral_disk) or networks_updated(tg_a.networks, tg_b.networks):
        return True
    if not _same(_affinities(job_a, tg_a), _affinities(job_b, tg_b)):
        return True
    if not _same(list(job_a.spreads or ()) + list(tg_a.spreads or ()), list(job_b.spreads or ()) + list(tg_b.spreads or ())):
        return True
    if _consul_key(tg_a.consul) != _consul_key(tg_b.consul) or not _same(tg_a.volumes, tg_b.volumes):
        return True
    by_name = {t.name: t for t in tasks_b}
    for at in tasks_a:
        bt = by_name.get(at.name)
        if bt is None or _task_updated(job_a, tg_a, at, job_b, tg_b, bt):
            return True
    return False
