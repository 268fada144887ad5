"""Issue 5, `yurt alloc exec` end to end: the CLI, the websocket route on the client, the server's
relay to the node that runs the alloc, and the driver's exec (pipes, or a pty with -t)."""

import asyncio
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import textwrap
import time

import pytest

from .agents import REPO, YURT, wait_until, yurt

pytestmark = pytest.mark.timeout(120)

JOB = textwrap.dedent("""
    job "shell" {
      datacenters = ["*"]
      group "g" {
        task "box" {
          driver = "raw_exec"
          env {
            GREETING = "from-the-task"
          }
          config {
            command = "/bin/sh"
            args    = ["-c", "sleep 300"]
          }
          resources {
            cpu    = 50
            memory = 32
          }
        }
      }
    }
""")


def exec_cli(address: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*YURT, "alloc", "exec", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, NOMAD_ADDR=address), cwd=REPO)


def exec_in_terminal(address: str, *args: str, keys: bytes, rows: int = 30, cols: int = 90) -> tuple[int, bytes]:
    """Run the CLI on a terminal of rows x cols (a pty); type `keys` once the remote shell prompts."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([*YURT, "alloc", "exec", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=dict(os.environ, NOMAD_ADDR=address), cwd=REPO, start_new_session=True)
    os.close(slave)
    output, typed = b"", False
    deadline = time.monotonic() + 40
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:  # EIO: the CLI exited and closed the terminal
                    break
            if not typed and b"# " in output:  # the remote shell prompts: the local terminal is raw now
                os.write(master, keys)
                typed = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=10), output
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def start_shell_job(agent, tmp_path) -> str:
    path = tmp_path / "shell.nomad.hcl"
    path.write_text(JOB)
    yurt(agent.address, "job", "run", "-detach", str(path))

    def running():
        allocs = [a for a in agent.api("/v1/job/shell/allocations") if a["ClientStatus"] == "running"]
        return allocs and allocs[0]["ID"]
    return wait_until(running, timeout=30, what="the shell job running")


def test_alloc_exec_against_a_dev_agent(cluster, tmp_path):
    dev = cluster("dev", "dev").start()
    alloc_id = start_shell_job(dev, tmp_path)

    hi = exec_cli(dev.address, alloc_id[:8], "echo", "hi")
    assert (hi.returncode, hi.stdout, hi.stderr) == (0, "hi\n", ""), hi

    code = exec_cli(dev.address, alloc_id, "/bin/sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 5')
    assert (code.returncode, code.stdout, code.stderr) == (5, "from-the-task\n", "oops\n"), code

    piped = exec_cli(dev.address, "-task", "box", alloc_id, "/bin/sh", "-c", "tr a-z A-Z", stdin="shout\n")
    assert (piped.returncode, piped.stdout) == (0, "SHOUT\n"), piped

    shell = exec_cli(dev.address, "-i", "-t", alloc_id, "/bin/sh", stdin="echo $((1+2))\nexit 3\n")
    assert shell.returncode == 3, shell
    assert re.search(r"^(# )*3$", shell.stdout, re.M), shell  # evaluated by the shell in the pty (after prompts)

    closed = exec_cli(dev.address, "-i=false", alloc_id, "/bin/sh", "-c", "cat; echo done")
    assert (closed.returncode, closed.stdout) == (0, "done\n"), closed

    code, output = exec_in_terminal(dev.address, alloc_id, "/bin/sh", keys=b"stty size; exit 4\r")
    assert code == 4 and b"30 90" in output, output  # -t by default on a terminal; its size sent along
    code, output = exec_in_terminal(dev.address, alloc_id, "/bin/sh", keys=b"\r~.")
    assert code == 1, output  # ~. at a line start ends the session

    bad_task = exec_cli(dev.address, "-task", "nope", alloc_id, "true")
    assert bad_task.returncode == 1 and "Could not find task named: nope" in bad_task.stderr, bad_task
    missing = exec_cli(dev.address, alloc_id, "/no/such/command")
    assert missing.returncode == 1 and "failed to exec into task" in missing.stderr, missing
    no_command = exec_cli(dev.address, alloc_id)
    assert no_command.returncode == 1 and "A command is required" in no_command.stderr, no_command

    route = f"{dev.address}/v1/client/allocation/{alloc_id}/exec"
    assert asyncio.run(ws_close(f"{route}?task=box&command=[]")) == (1008, "command is not present")
    assert asyncio.run(ws_close(f'{route}?task=nope&command=["true"]')) == (1008, 'unknown task name "nope"')
    assert asyncio.run(ws_close(f'{route}?command=["true"]')) == (1008, "must provide task name")


async def ws_close(url: str) -> tuple[int, str]:
    """The close code and reason the exec websocket answers with."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            msg = await ws.receive(timeout=10)
            return msg.data, msg.extra


def test_the_server_relays_exec_to_the_node_that_runs_the_alloc(cluster, tmp_path):
    server = cluster("srv", "server").start()
    cluster("c1", "client", servers=[f"127.0.0.1:{server.port}"]).start()
    wait_until(lambda: server.api("/v1/nodes"), what="node registration")
    alloc_id = start_shell_job(server, tmp_path)

    relayed = exec_cli(server.address, alloc_id, "/bin/sh", "-c", "read x; echo got-$x; exit 4", stdin="it\n")
    assert (relayed.returncode, relayed.stdout) == (4, "got-it\n"), relayed
    shell = exec_cli(server.address, "-t", alloc_id, "/bin/sh", stdin="echo $((20+1))\nexit 7\n")
    assert shell.returncode == 7 and re.search(r"^(# )*21$", shell.stdout, re.M), shell


def test_escape_sequence_at_line_start_disconnects():
    from yurt.cli.alloc_exec import EscapeFilter

    f = EscapeFilter("~")
    assert f.feed(b"ls ~/x\r") == (b"ls ~/x\r", False)  # not at a line start: sent as typed
    assert f.feed(b"~~") == (b"~", False)  # doubled: sent once
    f = EscapeFilter("~")
    assert f.feed(b"echo\r~") == (b"echo\r", False)
    assert f.feed(b".") == (b"", True)  # split over two reads
    assert EscapeFilter("~").feed(b"~x") == (b"~x", False)
    assert EscapeFilter("none").feed(b"~.") == (b"~.", False)
