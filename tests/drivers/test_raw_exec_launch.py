"""The raw_exec supervisor's launcher: each supervisor it forks reports its start on the
launcher's stdout (the driver waits on that, not on a poll of handle.json), and the task
does not inherit the launcher's ignored SIGCHLD."""

import json
import os
import signal
import threading
import time

from yurt.drivers import supervisor


def _spec(tmp_path, name: str, command: str, *args: str) -> str:
    state = tmp_path / name
    state.mkdir()
    spec = {"command": command, "args": list(args), "env": {"PATH": "/bin:/usr/bin"}, "cwd": str(tmp_path),
            "stdout_base": str(state / "out"), "stderr_base": None, "max_files": 2, "max_file_size_mb": 1}
    (state / supervisor.SPEC_FILE).write_text(json.dumps(spec))
    return str(state / supervisor.SPEC_FILE)


def _wait_for(path: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = supervisor.read_json(path)
        if data is not None:
            return data
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


def test_launcher_reports_each_start_and_the_task_gets_default_signals(tmp_path):
    marker = str(tmp_path)
    seen: dict[str, dict | None] = {}
    done = {name: threading.Event() for name in ("a", "b")}
    specs = {"a": _spec(tmp_path, "a", "sh", "-c", "grep SigIgn /proc/self/status; exit 3"),
             "b": _spec(tmp_path, "b", "no-such-command-here")}

    def on_started(name: str):
        def record():
            seen[name] = supervisor.read_json(os.path.join(os.path.dirname(specs[name]), supervisor.HANDLE_FILE))
            done[name].set()
        return record

    try:
        for name, spec in specs.items():
            assert supervisor.launch(spec, marker, on_started(name)) is True
        assert all(event.wait(10) for event in done.values())
        assert seen["a"]["pid"] > 0  # handle.json is there when the start is reported
        assert "failed to start task" in seen["b"]["error"]  # a failed start is reported too
        assert _wait_for(os.path.join(tmp_path, "a", supervisor.EXIT_FILE))["exit_code"] == 3
        ignored = int((tmp_path / "a" / "out.0").read_text().split()[1], 16)
        assert not ignored & (1 << (signal.SIGCHLD - 1))
        assert not supervisor._started_callbacks
    finally:
        supervisor._retire(supervisor._launchers.pop(marker))

