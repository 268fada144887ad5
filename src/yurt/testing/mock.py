"""Builders for realistic nodes, jobs and allocations (tests and benchmarks).

Every builder takes keyword overrides applied to the top-level object, e.g.
`mock_node(datacenter="dc2")` or `mock_job(id="web")`.
"""

from __future__ import annotations

from typing import Any

from yurt.structs import (
    HOUR,
    MINUTE,
    SECOND,
    Allocation,
    Constraint,
    DriverInfo,
    EphemeralDisk,
    Evaluation,
    Job,
    NetworkResource,
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedNetworkResources,
    NodeReservedResources,
    NodeResources,
    Port,
    ReschedulePolicy,
    Resources,
    RestartPolicy,
    Task,
    TaskGroup,
    evolve,
    generate_uuid,
)
from yurt.structs.alloc import ALLOC_CLIENT_PENDING, ALLOC_DESIRED_RUN, alloc_name
from yurt.structs.node import NODE_STATUS_READY
from yurt.structs.resources import allocated_resources_for

MOCK_DRIVERS = ("raw_exec", "exec", "mock_driver")


def mock_node(**overrides: Any) -> Node:
    """A ready, eligible linux node in dc1: 4000 MHz, 8192 MB, 100 GB disk, three drivers."""
    node_id = overrides.pop("id", None) or generate_uuid()
    attributes = {
        "kernel.name": "linux",
        "kernel.version": "6.1.0",
        "os.name": "ubuntu",
        "os.version": "22.04",
        "arch": "x86_64",
        "cpu.arch": "amd64",
        "cpu.numcores": "4",
        "cpu.frequency": "1000",
        "cpu.totalcompute": "4000",
        "memory.totalbytes": str(8192 * 1024 * 1024),
        "nomad.version": "1.9.0",
        "consul.version": "1.18.0",
        "unique.hostname": f"host-{node_id[:8]}",
        "unique.network.ip-address": "192.168.0.100",
        **{f"driver.{d}": "1" for d in MOCK_DRIVERS},
    }
    node = Node(
        id=node_id,
        secret_id=generate_uuid(),
        datacenter="dc1",
        name=f"node-{node_id[:8]}",
        http_addr="192.168.0.100:4646",
        attributes=attributes,
        node_resources=NodeResources(
            cpu=NodeCpuResources(cpu_shares=4000, total_cpu_cores=4, reservable_cpu_cores=[0, 1, 2, 3]),
            memory=NodeMemoryResources(memory_mb=8192),
            disk=NodeDiskResources(disk_mb=100 * 1024),
            networks=[NetworkResource(mode="host", device="eth0", cidr="192.168.0.100/32", ip="192.168.0.100", mbits=1000)],
        ),
        reserved_resources=NodeReservedResources(
            cpu=NodeReservedCpuResources(cpu_shares=100),
            memory=NodeMemoryResources(memory_mb=256),
            disk=NodeDiskResources(disk_mb=4 * 1024),
            networks=NodeReservedNetworkResources(reserved_host_ports="22"),
        ),
        meta={"pci-dss": "true", "database": "mysql", "version": "5.6"},
        node_class="linux-medium-pci",
        node_pool="default",
        drivers={d: DriverInfo(detected=True, healthy=True, attributes={f"driver.{d}": "1"}) for d in MOCK_DRIVERS},
        status=NODE_STATUS_READY,
        create_index=1,
        modify_index=1,
    )
    return evolve(node, **overrides) if overrides else node


def mock_task(**overrides: Any) -> Task:
    task = Task(
        name="web",
        driver="exec",
        config={"command": "/bin/date"},
        env={"FOO": "bar"},
        resources=Resources(cpu=500, memory_mb=256),
        meta={"foo": "bar"},
        kill_timeout=5 * SECOND,
    )
    return evolve(task, **overrides) if overrides else task


def mock_group(**overrides: Any) -> TaskGroup:
    tg = TaskGroup(
        name="web",
        count=10,
        ephemeral_disk=EphemeralDisk(size_mb=150),
        restart_policy=RestartPolicy(attempts=3, interval=10 * MINUTE, delay=1 * MINUTE, mode="delay"),
        reschedule_policy=ReschedulePolicy(
            attempts=2, interval=10 * MINUTE, delay=5 * SECOND, delay_function="constant"
        ),
        networks=[NetworkResource(mode="host", dynamic_ports=[Port(label="http")])],
        tasks=[mock_task()],
        meta={"elb_check_type": "http"},
    )
    return evolve(tg, **overrides) if overrides else tg


def mock_job(**overrides: Any) -> Job:
    """A service job `web` x 10 (one task, 500 MHz / 256 MB, dynamic port `http`) in dc1."""
    job_id = overrides.pop("id", None) or f"mock-service-{generate_uuid()[:8]}"
    job = Job(
        id=job_id,
        name=job_id,
        type="service",
        priority=50,
        datacenters=["dc1"],
        constraints=[Constraint(l_target="${attr.kernel.name}", r_target="linux", operand="=")],
        task_groups=[mock_group()],
        meta={"owner": "armon"},
        status="pending",
        version=0,
        create_index=42,
        modify_index=99,
        job_modify_index=99,
    )
    return evolve(job, **overrides) if overrides else job


def mock_batch_job(**overrides: Any) -> Job:
    """A batch job: group `web` x 10, mock_driver task 100 MHz / 100 MB, reschedule 1 per 24h."""
    job_id = overrides.pop("id", None) or f"mock-batch-{generate_uuid()[:8]}"
    tg = mock_group(
        networks=None,
        restart_policy=RestartPolicy(attempts=3, interval=24 * HOUR, delay=15 * SECOND, mode="fail"),
        reschedule_policy=ReschedulePolicy(
            attempts=1, interval=24 * HOUR, delay=5 * SECOND, delay_function="constant"
        ),
        tasks=[mock_task(driver="mock_driver", config={"run_for": "500ms"}, resources=Resources(cpu=100, memory_mb=100))],
    )
    fields = {"name": job_id, "type": "batch", "task_groups": [tg], **overrides}
    return mock_job(id=job_id, **fields)


def mock_system_job(**overrides: Any) -> Job:
    job_id = overrides.pop("id", None) or f"mock-system-{generate_uuid()[:8]}"
    tg = mock_group(count=1, reschedule_policy=None, networks=None)
    fields = {"name": job_id, "type": "system", "priority": 100, "task_groups": [tg], **overrides}
    return mock_job(id=job_id, **fields)


def mock_eval(job: Job, **overrides: Any) -> Evaluation:
    ev = Evaluation(
        id=generate_uuid(),
        namespace=job.namespace,
        priority=job.priority,
        type=job.type,
        triggered_by="job-register",
        job_id=job.id,
        job_modify_index=job.job_modify_index,
        status="pending",
    )
    return evolve(ev, **overrides) if overrides else ev


def mock_alloc(job: Job | None = None, node: Node | None = None, index: int = 0, **overrides: Any) -> Allocation:
    """A running-desired alloc of the job's first group on `node`, holding the group's
    resources; dynamic ports get values 20000 + index."""
    job = job or mock_job()
    node = node or mock_node()
    tg = (job.task_groups or [TaskGroup(name="web")])[0]
    networks = []
    for n, net in enumerate(tg.networks or ()):
        dyn = [evolve(p, value=20000 + index * 10 + n + i) for i, p in enumerate(net.dynamic_ports or ())]
        networks.append(evolve(net, ip="192.168.0.100", dynamic_ports=dyn or None))
    alloc = Allocation(
        id=generate_uuid(),
        namespace=job.namespace,
        eval_id=generate_uuid(),
        name=alloc_name(job.id, tg.name, index),
        node_id=node.id,
        node_name=node.name,
        job_id=job.id,
        job=job,
        task_group=tg.name,
        allocated_resources=allocated_resources_for(tg, networks),
        desired_status=ALLOC_DESIRED_RUN,
        client_status=ALLOC_CLIENT_PENDING,
        job_version=job.version,
    )
    return evolve(alloc, **overrides) if overrides else alloc
