"""The raw_exec supervisor's launcher: each supervisor it forks reports its start on the
launcher's stdout (the driver waits on that, not on a poll of handle.json), and the task
does not inherit the launcher's ignored SIGCHLD."""

import os
import signal
import threading
import time

from yurt.drivers import supervisor


def _spec(tmp_path, name: str, *argv: str) -> str:
    """A supervisor spec for `argv` in its own state dir; stdout goes to `<name>/out.N`."""
    (tmp_path / name).mkdir()
    path = str(tmp_path / name / supervisor.SPEC_FILE)
    supervisor.write_json_atomic(path, {
        "command": argv[0], "args": list(argv[1:]), "env": {"PATH": "/bin:/usr/bin"}, "cwd": str(tmp_path),
        "stdout_base": str(tmp_path / name / "out"), "stderr_base": None, "max_files": 2, "max_file_size_mb": 1})
    return path


def _exit_of(state_dir, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while (found := supervisor.read_json(os.path.join(state_dir, supervisor.EXIT_FILE))) is None:
        assert time.monotonic() < deadline, "the task did not exit"
        time.sleep(0.01)
    return found


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
        assert _exit_of(tmp_path / "a")["exit_code"] == 3
        ignored = int((tmp_path / "a" / "out.0").read_text().split()[1], 16)
        assert not ignored & (1 << (signal.SIGCHLD - 1))
        assert not supervisor._started_callbacks
    finally:
        supervisor._retire(supervisor._launchers.pop(marker))

