"""Start real `yurt agent` processes and run the real `yurt` CLI against them."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
YURT = [sys.executable, "-m", "yurt.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # the agent may not be listening yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class AgentProcess:
    """One `yurt agent` process with its own data dir, config file, port and log."""

    def __init__(self, workdir: Path, name: str, mode: str, servers: list[str] | None = None,
                 datacenter: str = "dc1", extra_hcl: str = "", port: int | None = None):
        self.name = name
        self.mode = mode  # "dev", "server" or "client"
        self.port = port or free_port()
        self.data_dir = workdir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self.config_path = workdir / f"{name}.hcl"
        # each server its own RPC port: on Nomad's default (4647) only the first would listen
        rpc = "" if "rpc =" in extra_hcl else f"rpc = {free_port()}"
        client = ""
        if mode == "client":
            client = f'client {{\n  enabled = true\n  servers = {json.dumps(servers or [])}\n}}\n'
        self.config_path.write_text(
            textwrap.dedent(f"""
            name = "{name}"
            bind_addr = "127.0.0.1"
            datacenter = "{datacenter}"
            ports {{
              http = {self.port}
              {rpc}
            }}
            plugin "raw_exec" {{
              config {{ enabled = true }}
            }}
            """) + client + extra_hcl
        )
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        flag = {"dev": "-dev", "server": "-server", "client": "-client"}[self.mode]
        return [*YURT, "agent", flag, "-config", str(self.config_path), "-data-dir", str(self.data_dir)]

    def start(self, wait: bool = True) -> "AgentProcess":
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=REPO, start_new_session=True)
        if wait:
            wait_until(self.ready, timeout=30, what=f"agent {self.name} to answer ({self.log_path})")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agent {self.name} exited {self.proc.returncode}:\n{self.log()}")
        resp = httpx.get(self.address + "/v1/agent/self", timeout=2)
        return resp.status_code == 200

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, **params):
        resp = httpx.get(self.address + path, params=params, timeout=10)
        resp.raise_for_status()
        return resp.json()


def yurt(address: str, *args: str, check: bool = True, timeout: float = 60, env: dict | None = None,
         cwd: Path | str = REPO) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, NOMAD_ADDR=address)
    full_env.update(env or {})
    result = subprocess.run([*YURT, *args], capture_output=True, text=True, timeout=timeout,
                            env=full_env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(
            f"yurt {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def kill_task_processes(data_dir: Path) -> None:
    """Kill supervisors and tasks a test left behind (they outlive agents by design)."""
    for _ in range(3):
        if not _kill_matching(str(data_dir)):
            return
        time.sleep(0.2)


def _kill_matching(needle: str) -> int:
    killed = 0
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (pid_dir / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed
