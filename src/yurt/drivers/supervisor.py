"""The per-task supervisor: `python -m yurt.drivers.supervisor <spec.json>`.

It detaches from whoever started it (fork + setsid, so the task outlives the agent),
starts the task in its own process group, copies the task's stdout and stderr into
rotating log files, and when the task ends records its exit status in `exit.json`
beside the spec. `handle.json` (supervisor pid, task pid, start time) is written once
the task runs, or carries `error` when it could not start.

SIGTERM asks the supervisor to stop the task: it sends the kill signal (from
`stop.json` beside the spec if present, else the spec's) to the task's process group,
waits the kill timeout, then sends SIGKILL.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from yurt.drivers.logrotate import FileRotator

HANDLE_FILE = "handle.json"
EXIT_FILE = "exit.json"
STOP_FILE = "stop.json"
SPEC_FILE = "spec.json"
LOG_FILE = "supervisor.log"


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _detach(state_dir: str) -> None:
    """Fork so the starter can reap us at once; the child leads a new session."""
    if os.fork() > 0:
        os._exit(0)
    try:
        os.setsid()
    except OSError:
        pass
    log_fd = os.open(os.path.join(state_dir, LOG_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)


def _copy_stream(stream, rotator: FileRotator | None) -> None:
    """Copy the task's output into the rotator (or drain it when logs are disabled)."""
    try:
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            if rotator is not None:
                rotator.write(chunk)
    finally:
        if rotator is not None:
            rotator.close()


class Supervisor:
    def __init__(self, spec: dict[str, Any], state_dir: str):
        self.spec = spec
        self.state_dir = state_dir
        self.proc: subprocess.Popen | None = None
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        for inherited in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(inherited, signal.SIG_DFL)  # the task must not inherit an ignored signal
        try:
            self.proc = self._start_task()
        except OSError as exc:
            self._record_start_failure(f"failed to start task: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            return 1
        started_at = time.time_ns()
        write_json_atomic(
            self._path(HANDLE_FILE),
            {"supervisor_pid": os.getpid(), "pid": self.proc.pid, "started_at": started_at},
        )
        copiers = [self._copier(self.proc.stdout, "stdout_base"), self._copier(self.proc.stderr, "stderr_base")]
        returncode = self.proc.wait()
        for copier in copiers:
            copier.join(timeout=2.0)
        self._record_exit(returncode)
        return 0

    def _path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    def _start_task(self) -> subprocess.Popen:
        spec = self.spec
        return subprocess.Popen(
            [spec["command"], *spec.get("args", [])],
            env=spec.get("env") or {},
            cwd=spec.get("cwd") or None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def _copier(self, stream, key: str) -> threading.Thread:
        size = int(self.spec.get("max_file_size_mb", 10)) * 1024 * 1024
        size = int(self.spec.get("max_file_size_bytes", size))
        base = self.spec.get(key)
        rotator = FileRotator(base, int(self.spec.get("max_files", 10)), size) if base else None
        thread = threading.Thread(target=_copy_stream, args=(stream, rotator), daemon=True)
        thread.start()
        return thread

    def _record_start_failure(self, message: str) -> None:
        now = time.time_ns()
        write_json_atomic(self._path(HANDLE_FILE), {"supervisor_pid": os.getpid(), "pid": 0, "error": message})
        write_json_atomic(self._path(EXIT_FILE), {"exit_code": -1, "signal": 0, "finished_at": now, "err": message})

    def _record_exit(self, returncode: int) -> None:
        sig = -returncode if returncode < 0 else 0
        code = 128 + sig if sig else returncode
        write_json_atomic(
            self._path(EXIT_FILE), {"exit_code": code, "signal": sig, "finished_at": time.time_ns(), "err": ""}
        )

    def _on_sigterm(self, signum, frame) -> None:
        if self._stopping or self.proc is None:
            return
        self._stopping = True
        threading.Thread(target=self._kill_sequence, daemon=True).start()

    def _kill_sequence(self) -> None:
        request = read_json(self._path(STOP_FILE)) or {}
        sig = int(request.get("signal") or self.spec.get("kill_signal") or signal.SIGINT)
        timeout_ns = int(request.get("timeout", self.spec.get("kill_timeout", 5_000_000_000)))
        pid = self.proc.pid
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout_ns / 1e9
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                return
            time.sleep(0.02)
        if self.proc.returncode is None:
            _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str]) -> int:
    spec_path = argv[0]
    state_dir = os.path.dirname(os.path.abspath(spec_path))
    with open(spec_path) as f:
        spec = json.load(f)
    if "--foreground" not in argv:
        _detach(state_dir)
    return Supervisor(spec, state_dir).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
