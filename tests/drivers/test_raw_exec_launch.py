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


def test_launcher_reports_each_start_and_exit_and_the_task_gets_default_signals(tmp_path):
    marker = str(tmp_path)
    seen: dict[tuple[str, str], dict | None] = {}
    done = {key: threading.Event() for key in
            [("started", "a"), ("exited", "a"), ("started", "b"), ("exited", "b")]}
    specs = {"a": _spec(tmp_path, "a", "sh", "-c", "grep SigIgn /proc/self/status; exit 3"),
             "b": _spec(tmp_path, "b", "no-such-command-here")}

    def recorder(event: str, name: str):
        file = supervisor.HANDLE_FILE if event == supervisor.STARTED else supervisor.EXIT_FILE

        def record():
            seen[event, name] = supervisor.read_json(os.path.join(tmp_path, name, file))
            done[event, name].set()
        return record

    try:
        for name, spec in specs.items():
            for event in (supervisor.STARTED, supervisor.EXITED):
                supervisor.expect(event, spec, recorder(event, name))
            assert supervisor.launch(spec, marker) is True
        assert done["started", "a"].wait(10) and done["exited", "a"].wait(10) and done["started", "b"].wait(10)
        assert seen["started", "a"]["pid"] > 0  # handle.json is there when the start is reported
        assert seen["exited", "a"]["exit_code"] == 3  # and exit.json when the exit is
        assert "failed to start task" in seen["started", "b"]["error"]  # a failed start is reported too
        assert not done["exited", "b"].is_set()  # (as a start only)
        ignored = int((tmp_path / "a" / "out.0").read_text().split()[1], 16)
        assert not ignored & (1 << (signal.SIGCHLD - 1))
        supervisor.forget(supervisor.EXITED, specs["b"], None)  # not the callback: nothing dropped
        assert list(supervisor._callbacks) == [(supervisor.EXITED, specs["b"])]
    finally:
        supervisor._callbacks.pop((supervisor.EXITED, specs["b"]), None)
        supervisor._retire(supervisor._launchers.pop(marker))
