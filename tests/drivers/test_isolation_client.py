"""exec and java through the client agent (against the client tests' fake server).

The agent is given the drivers explicitly, so this does not depend on `builtin_drivers`.
"""

import os
import sys

import psutil
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "client"))

from fakeserver import FakeServer, make_alloc  # noqa: E402

from yurt.client import ClientAgent, ClientConfig  # noqa: E402
from yurt.drivers.exec import ExecDriver  # noqa: E402
from yurt.drivers.exec.cgroups import TaskCgroup  # noqa: E402
from yurt.structs.job import Resources, Task  # noqa: E402

from test_isolation_support import CANNOT_ISOLATE  # noqa: E402

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(bool(CANNOT_ISOLATE), reason=f"cannot isolate here: {CANNOT_ISOLATE}"),
]


def exec_task(name: str, script: str, memory: int = 300, **kw) -> Task:
    return Task(name=name, driver="exec", config={"command": "/bin/sh", "args": ["-c", script]},
                resources=Resources(cpu=200, memory_mb=memory), **kw)


@pytest.fixture
async def server():
    fake = FakeServer()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def new_agent(tmp_path, server):
    agents = []

    async def start() -> ClientAgent:
        config = ClientConfig(data_dir=str(tmp_path / "data"), node_name="exec-node", servers=[server.address],
                              alloc_wait="2s", update_interval=0.05)
        agent = ClientAgent(config, drivers={"exec": ExecDriver()})
        await agent.start()
        await agent.registered.wait()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        try:
            await agent.stop()
            await agent.destroy_all_allocs()  # leave no task, cgroup or chroot behind
        except Exception:  # noqa: BLE001 - an agent stopped by the test already
            pass


async def test_exec_job_runs_isolated_through_the_agent(server, new_agent):
    agent = await new_agent()
    assert agent.node.attributes.get("driver.exec") == "1"
    alloc = make_alloc(agent.node.id, [exec_task("web", "id -un; ls /; echo mem=$NOMAD_MEMORY_LIMIT")])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    assert [e["Type"] for e in update["TaskStates"]["web"]["Events"]][-1] == "Terminated"
    out = open(os.path.join(agent.config.alloc_dir, alloc.id, "alloc", "logs", "web.stdout.0")).read().split()
    assert out[0] == "nobody" and "local" in out and "root" not in out and out[-1] == "mem=300"


async def test_exec_task_is_reattached_after_an_agent_restart(server, new_agent):
    first = await new_agent()
    alloc = make_alloc(first.node.id, [exec_task("long", "while [ ! -e /alloc/data/go ]; do sleep 0.05; done; exit 5")])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    handle = first.alloc_runners[alloc.id].task_runners["long"].handle
    await first.stop()
    assert psutil.pid_exists(handle.pid)
    cgroup = TaskCgroup.from_state(handle.state["cgroup"])
    shell = min(cgroup.pids())  # the task's sh (its sleeps come and go)
    second = await new_agent()
    runner = second.alloc_runners[alloc.id].task_runners["long"]
    assert runner.handle.pid == handle.pid and shell in cgroup.pids()  # the same processes, not restarted
    open(os.path.join(second.config.alloc_dir, alloc.id, "alloc", "data", "go"), "w").close()
    update = await server.wait_status(alloc.id, "failed")
    events = update["TaskStates"]["long"]["Events"]
    assert [e["Type"] for e in events].count("Started") == 1
    assert any(e["DisplayMessage"] == "Exit Code: 5" for e in events)


async def test_memory_limit_kill_is_reported_by_the_agent(server, new_agent):
    agent = await new_agent()
    alloc = make_alloc(agent.node.id, [exec_task("hog", "exec dd if=/dev/zero of=/dev/null bs=200M count=1", memory=40)])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    terminated = [e for e in update["TaskStates"]["hog"]["Events"] if e["Type"] == "Terminated"]
    assert terminated and terminated[-1]["Details"]["signal"] == "9"
    # the driver's exit result carries oom_killed=True and err "OOM Killed" (as Nomad's drivers do)
    assert "OOM Killed" in terminated[-1]["DisplayMessage"], terminated[-1]
    assert terminated[-1]["Details"]["oom_killed"] == "true"
