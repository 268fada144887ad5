from yurt.client.allocdir import AllocDir
from yurt.client.taskenv import build_task_env, interpolate, interpolate_config, interpolation_variables
from yurt.structs.alloc import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
)
from yurt.structs.job import Job, Task, TaskGroup
from yurt.structs.node import Node

ALLOC_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def fixture():
    task = Task(
        name="web",
        driver="raw_exec",
        meta={"owner": "ops"},
        env={"GREETING": "hi ${node.unique.name} on ${attr.kernel.name}", "PORT": "${NOMAD_PORT_http}", "X": "${unknown.thing}", "R": "${node.region}/${node.datacenter}"},
        config={"command": "/bin/echo", "args": ["${NOMAD_ALLOC_INDEX}", "${meta.rack}"]},
    )
    group = TaskGroup(name="frontend", tasks=[task], meta={"tier": "front"})
    job = Job(id="shop", name="Shop", region="eu", task_groups=[group], meta={"team": "a", "tier": "job"})
    res = AllocatedResources(
        tasks={"web": AllocatedTaskResources(cpu=AllocatedCpuResources(cpu_shares=250), memory=AllocatedMemoryResources(memory_mb=128, memory_max_mb=256))},
        shared=AllocatedSharedResources(ports=[AllocatedPortMapping(label="http", value=23456, to=8080, host_ip="10.0.0.5")]),
    )
    alloc = Allocation(id=ALLOC_ID, name="shop.frontend[2]", job_id="shop", job=job, task_group="frontend", namespace="prod", allocated_resources=res)
    node = Node(id="n1", name="node-one", datacenter="dc7", attributes={"kernel.name": "linux"}, meta={"rack": "r9"})
    return alloc, task, node, AllocDir("/data/alloc/" + ALLOC_ID)


def test_nomad_variables():
    alloc, task, node, ad = fixture()
    env = build_task_env(alloc, task, node, ad, host_env={"PATH": "/bin", "NOMAD_DC": "host"})
    assert env["PATH"] == "/bin"
    assert env["NOMAD_ALLOC_DIR"] == f"/data/alloc/{ALLOC_ID}/alloc"
    assert env["NOMAD_TASK_DIR"] == f"/data/alloc/{ALLOC_ID}/web/local"
    assert env["NOMAD_SECRETS_DIR"] == f"/data/alloc/{ALLOC_ID}/web/secrets"
    assert env["NOMAD_SHORT_ALLOC_ID"] == "0f1e2d3c"
    assert env["NOMAD_ALLOC_INDEX"] == "2" and env["NOMAD_ALLOC_NAME"] == "shop.frontend[2]"
    assert env["NOMAD_GROUP_NAME"] == "frontend" and env["NOMAD_JOB_NAME"] == "Shop" and env["NOMAD_JOB_ID"] == "shop"
    assert env["NOMAD_DC"] == "dc7" and env["NOMAD_REGION"] == "eu" and env["NOMAD_NAMESPACE"] == "prod"
    assert env["NOMAD_CPU_LIMIT"] == "250" and env["NOMAD_MEMORY_LIMIT"] == "128" and env["NOMAD_MEMORY_MAX_LIMIT"] == "256"
    assert env["NOMAD_PORT_http"] == "8080" and env["NOMAD_HOST_PORT_http"] == "23456"
    assert env["NOMAD_IP_http"] == "10.0.0.5" and env["NOMAD_ADDR_http"] == "10.0.0.5:23456"
    assert env["NOMAD_META_tier"] == "front" and env["NOMAD_META_TEAM"] == "a" and env["NOMAD_META_owner"] == "ops"


def test_task_env_is_interpolated():
    alloc, task, node, ad = fixture()
    env = build_task_env(alloc, task, node, ad)
    assert env["GREETING"] == "hi node-one on linux"
    assert env["PORT"] == "8080"
    assert env["X"] == "${unknown.thing}"
    assert env["R"] == "eu/dc7"


def test_config_is_interpolated():
    alloc, task, node, ad = fixture()
    env = build_task_env(alloc, task, node, ad)
    config = interpolate_config(task.config, interpolation_variables(env, node))
    assert config == {"command": "/bin/echo", "args": ["2", "r9"]}
    assert interpolate("${ NOMAD_TASK_NAME }", env) == "web"
    assert interpolate('${env["NOMAD_JOB_ID"]}-${env["NOPE"]}', env) == 'shop-${env["NOPE"]}'
    assert env["NOMAD_ALLOC_ADDR_http"] == "10.0.0.5:8080"
