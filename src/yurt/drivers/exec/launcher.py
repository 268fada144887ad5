"""The isolated start of an exec task: `python -I -m yurt.drivers.exec <isolation.json>`.

The supervisor (`yurt.drivers.supervisor`) starts this launcher as the task's process,
so the launcher's pid is the handle's pid. Three processes make up the task:

- the launcher unshares the uts, ipc and pid namespaces and forks the init (which
  unshares the mount namespace); it records `launch.json` (started, or the start
  error) beside the supervisor's files, then waits and ends the way the task ended
  (same exit code, or killed by the same signal) so the supervisor records it.
- the init is pid 1 of the new pid namespace: it builds the chroot, forks the task,
  forwards the signals it receives to the task's process group, reaps orphans, and
  reports the task's wait status to the launcher. When it dies (SIGKILL from the
  supervisor's kill escalation), the kernel kills everything in the namespace.
- the task: its own session, joins the task's cgroup, chroot to the task dir, bounding set reduced to the
  allowed capabilities, then the user's groups, gid and uid, then exec.
"""

import json
import os
import pwd
import signal

from yurt.drivers.supervisor import read_json, write_json_atomic

from . import linux
from .cgroups import TaskCgroup
from .chroot import DEFAULT_CHROOT_ENV, build_chroot

LAUNCH_FILE = "launch.json"
ISOLATION_FILE = "isolation.json"
FORWARDED = tuple(
    s for s in signal.valid_signals()
    if isinstance(s, signal.Signals) and s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)
)
_task_pid = 0


def _send(fd: int, message: dict) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _forward(signum, frame) -> None:
    if _task_pid:
        try:
            os.killpg(_task_pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(_task_pid, signum)
            except ProcessLookupError:
                pass


def _ignore(signum, frame) -> None:
    pass


def _resolve_command(command: str, root: str) -> str:
    if os.path.isabs(command):
        return command
    if "/" in command or os.path.exists(os.path.join(root, command)):
        return "/" + command
    return command  # looked up on the task's PATH inside the chroot


def _exec_task(spec: dict, user: pwd.struct_passwd | None, errfd: int) -> None:
    """In the forked task process: never returns."""
    try:
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        cgroup = TaskCgroup.from_state(spec.get("cgroup"))
        if cgroup is not None:
            cgroup.join(os.getpid())  # only the task is limited and counted, not launcher and init
        os.chroot(spec["root"])
        os.chdir(spec.get("work_dir") or "/")
        keep = set(spec.get("caps") or [])
        for cap in range(0, 64):
            if cap not in keep:
                try:
                    linux.prctl(linux.PR_CAPBSET_DROP, cap)
                except OSError:
                    break  # past the kernel's last capability
        if user is not None and user.pw_uid != 0:
            os.initgroups(user.pw_name, user.pw_gid)
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        command = _resolve_command(spec["command"], spec["root"])
        os.execvpe(command, [command, *spec.get("args", [])], spec.get("env") or {})
    except BaseException as exc:  # noqa: BLE001 - reported to the driver as the start error
        detail = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else str(exc)
        os.write(errfd, f"failed to start task: {detail}".encode())
    os._exit(127)


def _run_init(spec: dict, status_fd: int) -> int:
    """The namespace's init: build the chroot, start the task, wait for it."""
    global _task_pid
    try:
        user = pwd.getpwnam(spec["user"]) if spec.get("user") else None
        linux.unshare(linux.CLONE_NEWNS)  # the launcher stays in the host's mount namespace
        build_chroot(spec["root"], spec["alloc_shared_dir"], spec.get("chroot_env") or DEFAULT_CHROOT_ENV,
                     spec.get("mounts"))
    except (KeyError, OSError) as exc:
        what = f'user "{spec.get("user")}" not found' if isinstance(exc, KeyError) else str(exc)
        _send(status_fd, {"error": f"failed to set up task isolation: {what}"})
        return 127
    for sig in FORWARDED:
        signal.signal(sig, _forward)
    errread, errwrite = os.pipe()  # both close on exec
    pid = os.fork()
    if pid == 0:
        os.close(errread)
        _exec_task(spec, user, errwrite)
    os.close(errwrite)
    _task_pid = pid
    error = b""
    while chunk := os.read(errread, 4096):
        error += chunk
    if error:
        os.waitpid(pid, 0)
        _send(status_fd, {"error": error.decode(errors="replace")})
        return 127
    _send(status_fd, {"started": True})
    return _reap_until_task_exits(pid, status_fd)


def _reap_until_task_exits(pid: int, status_fd: int) -> int:
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            _send(status_fd, {"exit_code": -1})
            return 1
        if reaped == pid:
            break
    try:
        os.killpg(pid, signal.SIGKILL)  # what the task left behind in its group
    except (ProcessLookupError, PermissionError):
        pass
    if os.WIFSIGNALED(status):
        _send(status_fd, {"signal": os.WTERMSIG(status)})
    else:
        _send(status_fd, {"exit_code": os.WEXITSTATUS(status)})
    return 0


def _namespace_flags(spec: dict) -> int:
    flags = linux.CLONE_NEWUTS
    if spec.get("pid_mode", "private") != "host":
        flags |= linux.CLONE_NEWPID
    if spec.get("ipc_mode", "private") != "host":
        flags |= linux.CLONE_NEWIPC
    return flags


def _read_messages(fd: int):
    buffer = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def _end_like(message: dict, init_status: int) -> int:
    """Exit the launcher the way the task ended."""
    sig = int(message.get("signal") or 0)
    if "signal" not in message and "exit_code" not in message:
        if not os.WIFSIGNALED(init_status):
            return os.WEXITSTATUS(init_status) or 1
        sig = os.WTERMSIG(init_status)
    if sig:
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        return 128 + sig
    return int(message.get("exit_code", 1))


def launch(spec: dict, state_dir: str) -> int:
    launch_path = os.path.join(state_dir, LAUNCH_FILE)
    try:
        linux.unshare(_namespace_flags(spec))
    except OSError as exc:
        write_json_atomic(launch_path, {"error": f"failed to set up task isolation: {exc}"})
        return 127
    for sig in FORWARDED:
        signal.signal(sig, _ignore)  # the init, in our process group, forwards them
    status_read, status_write = os.pipe()
    launcher_pid = os.getpid()
    init_pid = os.fork()
    if init_pid == 0:
        os.close(status_read)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # the task never outlives its launcher
        if os.getppid() not in (0, launcher_pid):  # 0: the parent is outside our pid namespace
            os._exit(1)
        os._exit(_run_init(spec, status_write))
    os.close(status_write)
    last: dict = {}
    for message in _read_messages(status_read):
        if "started" in message or "error" in message:
            write_json_atomic(launch_path, {**message, "init_pid": init_pid})
        last = message
    _, init_status = os.waitpid(init_pid, 0)
    if "error" in last:
        return 127
    if read_json(launch_path) is None:
        write_json_atomic(launch_path, {"error": "task init died before the task started", "init_pid": init_pid})
    return _end_like(last, init_status)


def main(argv: list[str]) -> int:
    spec_path = argv[0]
    with open(spec_path) as f:
        spec = json.load(f)
    return launch(spec, os.path.dirname(os.path.abspath(spec_path)))

