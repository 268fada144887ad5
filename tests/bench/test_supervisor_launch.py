"""W5 path: supervisors are forked by a per-data-dir launcher (`supervisor.launch`), which
is restarted when it dies; the launched supervisor runs the task and records its exit."""

import json
import os
import signal
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


def test_launcher_runs_tasks_and_is_restarted_when_it_dies(tmp_path):
    marker = str(tmp_path)
    spec = _spec(tmp_path, "a", "echo", "hello")
    supervisor.launch(spec, marker)
    state = os.path.dirname(spec)
    handle = _wait_for(os.path.join(state, supervisor.HANDLE_FILE))
    assert handle["pid"] > 0 and handle["supervisor_pid"] != supervisor._launchers[marker].pid
    assert _wait_for(os.path.join(state, supervisor.EXIT_FILE))["exit_code"] == 0
    assert (tmp_path / "a" / "out.0").read_text() == "hello\n"
    launcher = supervisor._launchers[marker]
    assert marker in " ".join(launcher.args)  # tools find a data dir's processes by path
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    spec = _spec(tmp_path, "b", "no-such-command-here")
    supervisor.launch(spec, marker)
    handle = _wait_for(os.path.join(os.path.dirname(spec), supervisor.HANDLE_FILE))
    assert "failed to start task" in handle["error"] and "no-such-command-here" in handle["error"]
    assert supervisor._launchers[marker].pid != launcher.pid
    supervisor._retire(supervisor._launchers.pop(marker))
