"""The per-task supervisor, started as a script: `python -S -E <this file> <spec.json>`
(`launch_argv`); `python -m yurt.drivers.supervisor <spec.json>` works too.

It detaches from whoever started it (fork + setsid, so the task outlives the agent),
starts the task in its own process group, copies the task's stdout and stderr into
rotating log files, and when the task ends records its exit status in `exit.json`
beside the spec. `handle.json` (supervisor pid, task pid, start time) is written once
the task runs, or carries `error` when it could not start.

SIGTERM asks the supervisor to stop the task: it sends the kill signal (from
`stop.json` beside the spec if present, else the spec's) to the task's process group,
waits the kill timeout, then sends SIGKILL.

Start-up cost matters (it is on every raw_exec/exec task's path to `running`): run as a
script without `site` it imports only a few stdlib modules and `logrotate` (which sits
beside it), not the `yurt.drivers` package, and it starts the task with `os.posix_spawn`
rather than `subprocess`: about 35 ms less per task start than `-m` with the package.
"""

import json
import os
import signal
import sys
import threading
import time

HANDLE_FILE = "handle.json"
EXIT_FILE = "exit.json"
STOP_FILE = "stop.json"
SPEC_FILE = "spec.json"
LOG_FILE = "supervisor.log"


def launch_argv(*args: str) -> list[str]:
    """The command that runs this file as a script, without `site` or the PYTHON*
    environment (it needs only the stdlib and `logrotate` beside it): `launch_argv(spec)`
    starts a supervisor for `spec.json`, `launch_argv("--zygote", marker)` a launcher."""
    return [sys.executable, "-S", "-E", os.path.abspath(__file__), *args]


# -- the launcher ("zygote") --------------------------------------------------------------
# A Python process start costs ~35 ms of CPU (more on a busy machine), on every task's path
# to `running`. A launcher process started once per data dir (its path is the `marker` in
# its command line, so tools that look for a data dir's processes find it and the
# supervisors it forks) reads spec paths on stdin and forks a supervisor for each: the
# fork of a small, already-started interpreter takes ~1-2 ms. The launcher exits when its
# stdin closes (the agent went away); supervisors it started are detached and live on.
#
# Each supervisor it forks tells the agent, on the launcher's stdout, when `handle.json` is
# written (`started <spec path>`) and when `exit.json` is (`exited <spec path>`), so the
# agent learns of a start or an exit at once instead of polling for the files (a reader
# thread per launcher runs the callbacks registered with `expect`). The files stay the
# record: a supervisor from an earlier agent's launcher is still polled.

STARTED, EXITED = "started", "exited"
MAX_LAUNCHERS = 4
_launchers: dict = {}
_launchers_lock = threading.Lock()
_callbacks: dict = {}  # (event, abs spec path) -> [callable], run in a launcher's reader thread


def expect(event: str, spec_path: str, callback) -> None:
    """Call `callback()` (from another thread) when the supervisor of `spec_path` reports
    `event` (STARTED or EXITED), if its launcher is this process's."""
    with _launchers_lock:
        _callbacks.setdefault((event, os.path.abspath(spec_path)), []).append(callback)


def forget(event: str, spec_path: str, callback) -> None:
    """Drop a callback of `expect` (the caller stopped waiting)."""
    key = (event, os.path.abspath(spec_path))
    with _launchers_lock:
        waiting = _callbacks.get(key)
        if waiting and callback in waiting:
            waiting.remove(callback)
        if not waiting:
            _callbacks.pop(key, None)


def launch(spec_path: str, marker: str) -> bool:
    """Start a detached supervisor for `spec_path` through the launcher for `marker`
    (started on first use, restarted if it died); a fresh process if that fails. Returns
    once the request is handed over (the caller waits for `handle.json`): True when the
    launcher took it, so `expect`ed events will be reported."""
    import subprocess

    path = os.path.abspath(spec_path)
    with _launchers_lock:
        for _ in range(2):
            launcher = _launchers.get(marker)
            if launcher is None or launcher.poll() is not None:
                while len(_launchers) >= MAX_LAUNCHERS:  # e.g. many short-lived test agents
                    _retire(_launchers.pop(next(iter(_launchers))))
                launcher = _launchers[marker] = _start_launcher(marker)
            try:
                launcher.stdin.write(os.fsencode(path) + b"\n")
                launcher.stdin.flush()
                return True
            except OSError:  # it died: start another
                _launchers.pop(marker, None)
    subprocess.Popen(
        launch_argv(spec_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
    ).wait()
    return False


def _start_launcher(marker: str):
    import subprocess

    launcher = subprocess.Popen(
        launch_argv("--zygote", marker), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
    )
    threading.Thread(target=_read_events, args=(launcher.stdout,), daemon=True,
                     name=f"supervisor launcher {launcher.pid}").start()
    return launcher


def _read_events(stream) -> None:
    """`<event> <spec path>` lines from a launcher's supervisors (until the launcher and all
    of them are gone)."""
    with stream:
        for line in stream:
            event, _, path = line.rstrip(b"\n").partition(b" ")
            with _launchers_lock:
                waiting = _callbacks.pop((event.decode(errors="replace"), os.fsdecode(path)), ())
            for callback in waiting:
                try:
                    callback()
                except Exception:  # noqa: BLE001 - e.g. the caller's event loop is closed
                    pass


def _retire(launcher) -> None:
    try:
        launcher.stdin.close()  # it exits at end of input
        launcher.wait(timeout=1)
    except Exception:  # noqa: BLE001
        launcher.kill()


def _zygote() -> int:
    if __package__:  # imported once here, not in every forked supervisor
        from . import logrotate
    else:
        import logrotate
    del logrotate
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent's Ctrl-C is not for us
    # The supervisors are our children (one fork, not a double fork: the launcher is a
    # session leader, so a child can setsid itself); the kernel reaps them when they end.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return 0
        spec_path = os.fsdecode(line.rstrip(b"\n"))
        if not spec_path:
            continue
        if os.fork() == 0:
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGCHLD):  # the supervisor waits for its task
                    signal.signal(sig, signal.SIG_DFL)
                code = main([spec_path], fork=False, notify_fd=os.dup(1))
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)


def write_json_atomic(path: str, data: dict, durable: bool = True) -> None:
    """Write `path` whole or not at all; `durable=False` skips the fsync, for files that
    matter only while the processes that use them live (they do not survive a power loss
    either): a task's spec.json and handle.json, on every task's path to `running`.
    Safe from several threads at once (the temporary name is the writer's own)."""
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _file_rotator(base: str, max_files: int, max_file_size: int):
    if __package__:
        from .logrotate import FileRotator
    else:  # run as a script: logrotate.py is beside this file, on sys.path[0]
        from logrotate import FileRotator
    return FileRotator(base, max_files, max_file_size)


def _detach(state_dir: str, fork: bool = True) -> None:
    """Fork so the starter can reap us at once (unless `fork` is False: the launcher's
    child); lead a new session; stdout and stderr go to the supervisor's log."""
    if fork and os.fork() > 0:
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


def _copy_stream(fd: int, rotator) -> None:
    """Copy the task's output into the rotator (or drain it when logs are disabled)."""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if rotator is not None:
                rotator.write(chunk)
    finally:
        os.close(fd)
        if rotator is not None:
            rotator.close()


def _candidates(command: str, env: dict) -> list[str]:
    """Where to look for the command: as given when it has a slash, else along the task's
    PATH (the default path when it has none), as subprocess does."""
    if os.path.dirname(command):
        return [command]
    return [os.path.join(d or ".", command) for d in os.get_exec_path(env)]


def spawn_task(argv: list[str], env: dict, cwd: str | None) -> tuple[int, int, int]:
    """Start the task in a new session with stdin on /dev/null and stdout/stderr on pipes;
    returns (pid, stdout read fd, stderr read fd). Raises OSError as subprocess would."""
    if cwd:
        os.chdir(cwd)  # the task inherits it (posix_spawn has no chdir action here)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    restored = [s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s]
    failure: OSError | None = None
    try:
        for path in _candidates(argv[0], env):
            try:
                pid = os.posix_spawn(path, argv, env, file_actions=actions, setsid=True, setsigdef=restored)
                break
            except (FileNotFoundError, NotADirectoryError) as exc:
                failure = failure or exc
            except OSError as exc:  # e.g. permission denied: remember it, as execvpe does
                failure = exc
        else:
            exc = failure or FileNotFoundError(2, "No such file or directory")
            raise OSError(exc.errno, exc.strerror, argv[0])
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return pid, out_r, err_r


class Supervisor:
    def __init__(self, spec: dict, state_dir: str, notify_fd: int | None = None):
        """`notify_fd`: where to report STARTED and EXITED (the launcher's stdout, read by
        the agent); closed after the last report."""
        self.spec = spec
        self.state_dir = state_dir
        self.pid = 0
        self.returncode: int | None = None
        self._stopping = False
        self._notify_fd = notify_fd

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        for inherited in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(inherited, signal.SIG_DFL)  # the task must not inherit an ignored signal
        spec = self.spec
        try:
            self.pid, out_fd, err_fd = spawn_task(
                [spec["command"], *spec.get("args", [])], spec.get("env") or {}, spec.get("cwd") or None
            )
        except OSError as exc:
            self._record_start_failure(f"failed to start task: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            self._notify(STARTED, last=True)
            return 1
        started_at = time.time_ns()
        write_json_atomic(
            self._path(HANDLE_FILE),
            {"supervisor_pid": os.getpid(), "pid": self.pid, "started_at": started_at}, durable=False,
        )
        self._notify(STARTED)
        copiers = [self._copier(out_fd, "stdout_base"), self._copier(err_fd, "stderr_base")]
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        for copier in copiers:
            copier.join(timeout=2.0)
        self._record_exit(self.returncode)
        self._notify(EXITED, last=True)
        return 0

    def _path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    def _notify(self, event: str, last: bool = False) -> None:
        fd = self._notify_fd
        if fd is None:
            return
        try:
            os.write(fd, event.encode() + b" " + os.fsencode(self._path(SPEC_FILE)) + b"\n")  # < PIPE_BUF: atomic
        except OSError:  # the agent went away (the pipe's reader is gone)
            last = True
        if last:
            self._notify_fd = None
            os.close(fd)

    def _copier(self, fd: int, key: str) -> threading.Thread:
        size = int(self.spec.get("max_file_size_mb", 10)) * 1024 * 1024
        size = int(self.spec.get("max_file_size_bytes", size))
        base = self.spec.get(key)
        rotator = _file_rotator(base, int(self.spec.get("max_files", 10)), size) if base else None
        thread = threading.Thread(target=_copy_stream, args=(fd, rotator), daemon=True)
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
        if self._stopping or not self.pid:
            return
        self._stopping = True
        threading.Thread(target=self._kill_sequence, daemon=True).start()

    def _kill_sequence(self) -> None:
        request = read_json(self._path(STOP_FILE)) or {}
        sig = int(request.get("signal") or self.spec.get("kill_signal") or signal.SIGINT)
        timeout_ns = int(request.get("timeout", self.spec.get("kill_timeout", 5_000_000_000)))
        pid = self.pid
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout_ns / 1e9
        while time.monotonic() < deadline:
            if self.returncode is not None:
                return
            time.sleep(0.02)
        if self.returncode is None:
            _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str], fork: bool = True, notify_fd: int | None = None) -> int:
    if argv and argv[0] == "--zygote":
        return _zygote()
    spec_path = argv[0]
    state_dir = os.path.dirname(os.path.abspath(spec_path))
    with open(spec_path) as f:
        spec = json.load(f)
    if "--foreground" not in argv:
        _detach(state_dir, fork)
    return Supervisor(spec, state_dir, notify_fd).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
