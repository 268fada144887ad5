"""The client agent against a fake server: register, heartbeat, run allocs, report."""

import asyncio
import os

import psutil

from fakeserver import make_alloc, raw_task

from yurt.client import ClientAgent
from yurt.structs import SECOND
from yurt.structs.job import RestartPolicy, Task


async def test_registers_with_fingerprint_and_heartbeats(server, agent):
    a = await agent(heartbeat_interval=0.05)
    node = server.nodes[a.node.id]
    assert node["Name"] == "test-node"
    assert node["Attributes"]["driver.raw_exec"] == "1"
    assert node["Drivers"]["raw_exec"]["Healthy"] is True
    assert node["NodeResources"]["Cpu"]["CpuShares"] == int(node["Attributes"]["cpu.totalcompute"])
    await asyncio.sleep(0.3)
    assert server.heartbeats.count(a.node.id) >= 2


async def test_reregisters_when_server_forgets_the_node(server, agent):
    a = await agent(heartbeat_interval=0.05)
    server.nodes.clear()
    for _ in range(100):
        if a.node.id in server.nodes:
            break
        await asyncio.sleep(0.05)
    assert a.node.id in server.nodes


async def test_node_id_is_stable_across_restarts(client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.stop()
    second = ClientAgent(client_config())
    await second.start()
    await second.stop()
    assert first.node.id == second.node.id and first.node.secret_id == second.node.secret_id


async def test_batch_alloc_runs_to_completion(server, agent):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("hello", "echo hi from $NOMAD_TASK_NAME")])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    state = update["TaskStates"]["hello"]
    assert state["State"] == "dead" and state["Failed"] is False
    types = [e["Type"] for e in state["Events"]]
    assert types == ["Received", "Task Setup", "Started", "Terminated"]
    messages = [e["DisplayMessage"] for e in state["Events"]]
    assert messages[0] == "Task received by client"
    assert messages[1] == "Building Task Directory"
    assert messages[2] == "Task started by client"
    assert messages[3] == "Exit Code: 0"
    log = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs", "hello.stdout.0")
    assert open(log).read() == "hi from hello\n"


async def test_failing_task_without_restarts_fails_the_alloc(server, agent):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("bad", "exit 3")])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    events = update["TaskStates"]["bad"]["Events"]
    assert events[-2]["DisplayMessage"] == "Exit Code: 3"
    assert events[-1]["Type"] == "Not Restarting"
    assert update["TaskStates"]["bad"]["Failed"] is True


async def test_restart_policy_restarts_then_gives_up(server, agent):
    a = await agent()
    policy = RestartPolicy(attempts=1, interval=60 * SECOND, delay=SECOND // 10, mode="fail")
    alloc = make_alloc(a.node.id, [raw_task("flaky", "exit 1")], restart=policy)
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    state = update["TaskStates"]["flaky"]
    types = [e["Type"] for e in state["Events"]]
    assert types.count("Started") == 2 and "Restarting" in types
    assert state["Restarts"] == 1
    assert state["Events"][-1]["DisplayMessage"] == 'Exceeded allowed attempts 1 in interval 1m0s and mode is "fail"'


async def test_desired_stop_kills_the_task(server, agent):
    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("web", "sleep 60")], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    await server.stop_alloc(alloc.id)
    update = await server.wait_status(alloc.id, "complete")
    types = [e["Type"] for e in update["TaskStates"]["web"]["Events"]]
    assert types[-3:] == ["Killing", "Terminated", "Killed"]
    assert update["TaskStates"]["web"]["Events"][-1]["DisplayMessage"] == "Task successfully killed"


async def test_leader_death_kills_the_others(server, agent):
    a = await agent()
    leader = raw_task("leader", "sleep 0.3", leader=True)
    follower = raw_task("follower", "sleep 60")
    alloc = make_alloc(a.node.id, [leader, follower])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    types = [e["Type"] for e in update["TaskStates"]["follower"]["Events"]]
    assert "Leader Task Dead" in types and types[-1] == "Killed"


async def test_mock_driver_alloc(server, agent):
    a = await agent()
    task = Task(name="m", driver="mock_driver", config={"run_for": "100ms", "exit_code": 0})
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")


async def test_tasks_outlive_the_agent_and_are_reattached(server, client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.registered.wait()
    marker = os.path.join(str(first.config.data_dir), "go")
    script = f"while [ ! -e {marker} ]; do sleep 0.05; done; exit 7"
    alloc = make_alloc(first.node.id, [raw_task("long", script)])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    pid = first.alloc_runners[alloc.id].task_runners["long"].handle.pid
    await first.stop()
    del first
    assert psutil.pid_exists(pid)

    second = ClientAgent(client_config())
    await second.start()
    try:
        runner = second.alloc_runners[alloc.id].task_runners["long"]
        assert runner.handle.pid == pid
        await asyncio.sleep(0.3)
        open(marker, "w").close()
        update = await server.wait_status(alloc.id, "failed")
        events = update["TaskStates"]["long"]["Events"]
        assert [e["Type"] for e in events].count("Started") == 1  # never restarted
        assert events[-2]["DisplayMessage"] == "Exit Code: 7"
    finally:
        await second.stop()


async def test_task_that_exits_while_agent_is_down_is_reported(server, client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.registered.wait()
    alloc = make_alloc(first.node.id, [raw_task("short", "sleep 0.5; exit 0")])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    await first.stop()
    await asyncio.sleep(1.0)
    server.updates.clear()
    second = ClientAgent(client_config())
    await second.start()
    try:
        update = await server.wait_status(alloc.id, "complete")
        assert update["TaskStates"]["short"]["Events"][-1]["DisplayMessage"] == "Exit Code: 0"
    finally:
        await second.stop()


async def test_deployment_health_is_reported(server, agent):
    from yurt.structs.base import evolve
    from yurt.structs.job import UpdateStrategy

    a = await agent()
    alloc = make_alloc(a.node.id, [raw_task("web", "sleep 60")], job_type="service")
    group = evolve(alloc.job.task_groups[0], update=UpdateStrategy(max_parallel=1, health_check="task_states", min_healthy_time=SECOND // 5, healthy_deadline=60 * SECOND))
    alloc = evolve(alloc, deployment_id="d1", job=evolve(alloc.job, task_groups=[group]))
    await server.add_alloc(alloc)
    for _ in range(100):
        update = server.last_update(alloc.id)
        if update and update["DeploymentStatus"]:
            break
        await asyncio.sleep(0.05)
    assert update["DeploymentStatus"]["Healthy"] is True and update["ClientStatus"] == "running"
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete")


async def test_restarting_task_is_not_waited_on_again_after_agent_restart(server, client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.registered.wait()
    marker = os.path.join(first.config.data_dir, "healthy")
    policy = RestartPolicy(attempts=3, interval=60 * SECOND, delay=3 * SECOND, mode="fail")
    script = f"if [ -e {marker} ]; then sleep 60; else exit 1; fi"
    alloc = make_alloc(first.node.id, [raw_task("t", script)], job_type="service", restart=policy)
    await server.add_alloc(alloc)
    runner = None
    for _ in range(100):
        runner = first.alloc_runners.get(alloc.id)
        if runner and runner.task_runners["t"].state.restarts == 1:
            break
        await asyncio.sleep(0.05)
    assert runner.task_runners["t"].handle is None  # in its restart delay
    await first.stop()
    open(marker, "w").close()
    second = ClientAgent(client_config())
    await second.start()
    try:
        tr = second.alloc_runners[alloc.id].task_runners["t"]
        for _ in range(100):
            if tr.state.state == "running":
                break
            await asyncio.sleep(0.05)
        types = [e.type for e in tr.state.events]
        assert types == ["Received", "Task Setup", "Started", "Terminated", "Restarting", "Task Setup", "Started"]
        await server.stop_alloc(alloc.id)
        await server.wait_status(alloc.id, "complete")
    finally:
        await second.stop()


async def test_destroy_all_allocs_after_stop_kills_tasks(server, client_config):
    a = ClientAgent(client_config())
    await a.start()
    await a.registered.wait()
    alloc = make_alloc(a.node.id, [raw_task("web", "sleep 60")], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    pid = a.alloc_runners[alloc.id].task_runners["web"].handle.pid
    await a.stop()
    await a.destroy_all_allocs()
    for _ in range(100):
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        await asyncio.sleep(0.05)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not os.path.exists(os.path.join(a.config.alloc_dir, alloc.id))
    again = ClientAgent(client_config())
    await again.start()
    try:
        assert alloc.id not in again.alloc_runners
    finally:
        await again.stop()


async def test_lifecycle_hooks_order_tasks(server, agent):
    from yurt.structs.job import TaskLifecycle

    a = await agent()
    order = os.path.join(a.config.data_dir, "order")
    init = raw_task("init", f"echo init >> {order}", lifecycle=TaskLifecycle(hook="prestart"))
    main = raw_task("main", f"sleep 0.2; echo main >> {order}")
    post = raw_task("cleanup", f"echo cleanup >> {order}", lifecycle=TaskLifecycle(hook="poststop"))
    alloc = make_alloc(a.node.id, [post, main, init])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    assert open(order).read().split() == ["init", "main", "cleanup"]
    assert all(s["State"] == "dead" and not s["Failed"] for s in update["TaskStates"].values())


async def test_updates_are_retried_on_server_errors_and_dropped_when_rejected(server, agent):
    a = await agent()
    server.reject_updates_with = 500
    alloc = make_alloc(a.node.id, [raw_task("t", "true")])
    await server.add_alloc(alloc)
    for _ in range(100):
        if server.update_calls >= 2:
            break
        await asyncio.sleep(0.05)
    server.reject_updates_with = 0
    await server.wait_status(alloc.id, "complete")  # the retried batch arrives

    server.reject_updates_with = 400
    a.queue_update({"ID": "unknown-alloc", "ClientStatus": "running"})
    calls = server.update_calls
    await asyncio.sleep(1.5)
    assert server.update_calls == calls + 1  # a rejected batch is not retried


async def test_shutdown_delay_waits_before_the_kill(server, agent):
    import time

    a = await agent()
    task = raw_task("web", "sleep 60", shutdown_delay=SECOND // 2)
    alloc = make_alloc(a.node.id, [task], job_type="service")
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    start = time.monotonic()
    await server.stop_alloc(alloc.id)
    update = await server.wait_status(alloc.id, "complete")
    assert time.monotonic() - start >= 0.5
    events = update["TaskStates"]["web"]["Events"]
    assert [e["Type"] for e in events][-4:] == ["Waiting for shutdown delay", "Killing", "Terminated", "Killed"]
    assert events[-4]["DisplayMessage"] == "Waiting for shutdown_delay of 500ms before killing the task."


async def test_restored_allocs_resend_their_state(server, client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.registered.wait()
    alloc = make_alloc(first.node.id, [raw_task("t", "exit 0")])
    server.reject_updates_with = 503  # the server never hears about the completion
    await server.add_alloc(alloc)
    for _ in range(100):
        if first.alloc_runners.get(alloc.id) and first.alloc_runners[alloc.id].terminal:
            break
        await asyncio.sleep(0.05)
    await first.stop()
    assert server.last_update(alloc.id) is None
    server.reject_updates_with = 0
    second = ClientAgent(client_config())
    await second.start()
    try:
        update = await server.wait_status(alloc.id, "complete")
        assert [e["Type"] for e in update["TaskStates"]["t"]["Events"]][-1] == "Terminated"
    finally:
        await second.stop()


async def test_alloc_being_stopped_at_shutdown_is_not_restarted_on_restore(server, client_config):
    first = ClientAgent(client_config())
    await first.start()
    await first.registered.wait()
    task = raw_task("web", "trap 'sleep 0.5; exit 0' INT; while true; do sleep 0.05; done")
    policy = RestartPolicy(attempts=5, interval=60 * SECOND, delay=0, mode="fail")
    alloc = make_alloc(first.node.id, [task], job_type="service", restart=policy)
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "running")
    await server.stop_alloc(alloc.id)
    for _ in range(100):
        if any(e.type == "Killing" for e in first.alloc_runners[alloc.id].task_runners["web"].state.events):
            break
        await asyncio.sleep(0.02)
    pid = first.alloc_runners[alloc.id].task_runners["web"].handle.pid
    await first.stop()  # mid-kill
    for _ in range(100):  # the supervisor finishes the kill while no agent runs
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        await asyncio.sleep(0.05)
    second = ClientAgent(client_config())
    await second.start()
    try:
        update = await server.wait_status(alloc.id, "complete")
        types = [e["Type"] for e in update["TaskStates"]["web"]["Events"]]
        assert types.count("Started") == 1 and "Restarting" not in types
    finally:
        await second.stop()


async def test_kill_while_the_driver_is_starting_the_task(server, agent):
    from yurt.drivers.mock import MockDriver

    class SlowStart(MockDriver):
        async def start_task(self, cfg):
            await asyncio.sleep(0.3)
            return await super().start_task(cfg)

    a = await agent()
    a.drivers["mock_driver"] = SlowStart()
    alloc = make_alloc(a.node.id, [Task(name="m", driver="mock_driver", config={"run_for": "60s"})], job_type="service")
    await server.add_alloc(alloc)
    for _ in range(100):
        if alloc.id in a.alloc_runners:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # inside start_task
    await server.stop_alloc(alloc.id)
    update = await server.wait_status(alloc.id, "complete", timeout=10)
    assert update["TaskStates"]["m"]["Events"][-1]["Type"] == "Killed"


async def test_templates_are_rendered_before_the_task_starts(server, agent):
    a = await agent()
    task = raw_task("t", "cat local/conf.txt; echo \"from env: $GREETING\"", templates=[
        {"EmbeddedTmpl": 'alloc {{ env "NOMAD_ALLOC_INDEX" }}\n', "DestPath": "local/conf.txt"},
        {"EmbeddedTmpl": "GREETING=hi\n", "DestPath": "secrets/env", "Envvars": True},
    ])
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")
    log = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs", "t.stdout.0")
    assert open(log).read() == "alloc 0\nfrom env: hi\n"


async def test_unsupported_template_fails_the_task_with_a_reason(server, agent):
    a = await agent()
    task = raw_task("t", "true", templates=[{"EmbeddedTmpl": '{{ key "x" }}', "DestPath": "local/x"}])
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    killing, killed = update["TaskStates"]["t"]["Events"][-2:]  # Nomad's template hook kills the task
    assert killing["Type"] == "Killing" and killing["DisplayMessage"].startswith("Template failed: ")
    assert '"key"' in killing["DisplayMessage"] and killed["Type"] == "Killed"


async def test_drivers_receive_the_allocated_resources(server, agent):
    from yurt.drivers.mock import MockDriver
    from yurt.structs.alloc import AllocatedCpuResources, AllocatedMemoryResources, AllocatedResources, AllocatedTaskResources
    from yurt.structs.base import evolve

    seen = []

    class Recording(MockDriver):
        async def start_task(self, cfg):
            seen.append((cfg.cpu_shares, cfg.memory_mb, cfg.memory_max_mb))
            return await super().start_task(cfg)

    a = await agent()
    a.drivers["mock_driver"] = Recording()
    alloc = make_alloc(a.node.id, [Task(name="m", driver="mock_driver", config={})])
    res = AllocatedResources(tasks={"m": AllocatedTaskResources(
        cpu=AllocatedCpuResources(cpu_shares=250), memory=AllocatedMemoryResources(memory_mb=128, memory_max_mb=512))})
    await server.add_alloc(evolve(alloc, allocated_resources=res))
    await server.wait_status(alloc.id, "complete")
    assert seen == [(250, 128, 512)]


async def test_fails_over_to_the_next_server(server, client_config):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    cfg = client_config()
    cfg.servers = [dead, server.address]
    a = ClientAgent(cfg)
    await a.start()
    try:
        await asyncio.wait_for(a.registered.wait(), 10)
        assert a.node.id in server.nodes
    finally:
        await a.stop()
