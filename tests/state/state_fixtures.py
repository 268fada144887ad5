"""Small builders of yurt.structs objects for the state tests (no dependency on yurt.testing)."""

import itertools

from yurt.structs import (
    Allocation,
    Evaluation,
    Job,
    Node,
    NodeResources,
    Resources,
    Task,
    TaskGroup,
)

_ids = itertools.count(1)


def uid(prefix: str = "id") -> str:
    n = next(_ids)
    return f"{prefix}{n:08d}-0000-0000-0000-000000000000"


def job(job_id: str = "web", groups: tuple[str, ...] = ("web",), count: int = 2, **kw) -> Job:
    return Job(
        id=job_id,
        name=job_id,
        datacenters=["dc1"],
        task_groups=[
            TaskGroup(
                name=g,
                count=count,
                tasks=[Task(name="t", driver="raw_exec", resources=Resources(cpu=100, memory_mb=64))],
            )
            for g in groups
        ],
        **kw,
    )


def node(node_id: str | None = None, **kw) -> Node:
    node_id = node_id or uid("node")
    return Node(id=node_id, name=f"n-{node_id[:8]}", status="ready", node_resources=NodeResources(), **kw)


def evaluation(j: Job, **kw) -> Evaluation:
    kw.setdefault("id", uid("eval"))
    kw.setdefault("triggered_by", "job-register")
    return Evaluation(namespace=j.namespace, job_id=j.id, type=j.type, **kw)


def alloc(j: Job, node_id: str, eval_id: str, group: str | None = None, idx: int = 0, **kw) -> Allocation:
    group = group or j.task_groups[0].name
    kw.setdefault("id", uid("alloc"))
    return Allocation(
        namespace=j.namespace,
        job_id=j.id,
        task_group=group,
        name=f"{j.id}.{group}[{idx}]",
        node_id=node_id,
        eval_id=eval_id,
        **kw,
    )
