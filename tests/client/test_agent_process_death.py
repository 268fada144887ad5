"""A task outlives its agent's process even when the agent is killed with SIGKILL."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import psutil

from fakeserver import make_alloc, raw_task

from yurt.client import ClientAgent

AGENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from yurt.client import ClientAgent, ClientConfig

    async def main():
        cfg = ClientConfig(data_dir=sys.argv[1], servers=[sys.argv[2]], raw_exec_enabled=True,
                           alloc_wait="2s", update_interval=0.05)
        agent = ClientAgent(cfg)
        await agent.start()
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_task_survives_sigkill_of_the_agent_process(server, client_config, tmp_path):
    cfg = client_config()
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), cfg.data_dir, server.address])
    try:
        for _ in range(200):
            if server.nodes:
                break
            await asyncio.sleep(0.05)
        node_id = next(iter(server.nodes))
        marker = os.path.join(cfg.data_dir, "finish")
        alloc = make_alloc(node_id, [raw_task("t", f"while [ ! -e {marker} ]; do sleep 0.05; done; exit 5")])
        await server.add_alloc(alloc)
        update = await server.wait_status(alloc.id, "running")
        assert update["TaskStates"]["t"]["State"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    children = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert children, "the task died with its agent"
    agent = ClientAgent(cfg)
    await agent.start()
    try:
        assert agent.alloc_runners[alloc.id].task_runners["t"].handle.pid in {p.pid for p in children}
        open(marker, "w").close()
        update = await server.wait_status(alloc.id, "failed")
        assert update["TaskStates"]["t"]["Events"][-2]["DisplayMessage"] == "Exit Code: 5"
    finally:
        await agent.stop()
