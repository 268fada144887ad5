"""Start a real `yurt agent` process (server or dev) on a loopback port, in a temp dir, and
watch its memory; stop it and remove its files afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentProcess:
    """`yurt agent -server` (or `-dev`) with its own config file, data dir and log.

    `server_hcl` goes inside the `server { }` block (e.g. `heartbeat_grace = "5s"`);
    `extra_hcl` is appended at the top level (e.g. a `plugin "docker" { ... }` block)."""

    def __init__(self, mode: str = "server", server_hcl: str = "", workdir: str | None = None,
                 num_schedulers: int = 0, extra_hcl: str = ""):
        assert mode in ("server", "dev")
        self.mode = mode
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"yurt-bench-{mode}-"))
        self.port = free_port()
        self.rpc_port = free_port()  # the clients' RPC listener (yurt.rpc)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "agent.log"
        self.config_path = self.workdir / "agent.hcl"
        schedulers = f"num_schedulers = {num_schedulers}\n" if num_schedulers else ""
        server_block = f"server {{\n  enabled = true\n{schedulers}{server_hcl}\n}}\n" if mode == "server" else ""
        self.config_path.write_text(textwrap.dedent(f"""\
            name = "bench-{mode}"
            bind_addr = "127.0.0.1"
            log_level = "WARN"
            ports {{
              http = {self.port}
              rpc = {self.rpc_port}
            }}
            plugin "raw_exec" {{
              config {{ enabled = true }}
            }}
            """) + server_block + extra_hcl)
        self.proc: subprocess.Popen | None = None
        self.peak_rss = 0
        self._sampler: threading.Thread | None = None
        self._stop_sampling = threading.Event()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "AgentProcess":
        flag = "-server" if self.mode == "server" else "-dev"
        argv = [sys.executable, "-m", "yurt.cli.main", "agent", flag, "-config", str(self.config_path),
                "-data-dir", str(self.data_dir)]
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.address + "/v1/agent/self", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"agent did not answer within {timeout}s:\n{self.log_tail()}")
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()
        return self

    def _sample_rss(self) -> None:
        try:
            proc = psutil.Process(self.proc.pid)
            while not self._stop_sampling.wait(0.25):
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
        except psutil.Error:
            pass

    def rss(self) -> int:
        try:
            return psutil.Process(self.proc.pid).memory_info().rss
        except (psutil.Error, AttributeError):
            return 0

    def cpu_seconds(self) -> float:
        try:
            t = psutil.Process(self.proc.pid).cpu_times()
            return t.user + t.system
        except (psutil.Error, AttributeError):
            return 0.0

    def heartbeat_misses(self) -> int:
        """Nodes the server marked down or disconnected for a missed heartbeat (its log)."""
        try:
            return self.log_path.read_text(errors="replace").count("missed its heartbeat")
        except OSError:
            return 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self._stop_sampling.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.mode == "dev":
            _kill_leftovers(str(self.workdir))
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "AgentProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_leftovers(needle: str) -> None:
    """Task supervisors outlive their agent by design; a dev run's leftovers are ours to end."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(needle in part for part in proc.info["cmdline"] or ()):
                proc.kill()
        except psutil.Error:
            pass
