"""`alloc exec` for drivers whose tasks are host processes (raw_exec, exec, java): run the command
as a child of the agent, with pipes, or in a pseudo-terminal when a tty is asked for.

The command ends the session; when the session ends first (the user went away, the caller was
cancelled) the command's process group is killed.
"""

import asyncio
import fcntl
import functools
import os
import pty
import signal
import struct
import termios
from collections.abc import AsyncIterator

from .base import DriverError, ExecInput, ExecOutput

READ_SIZE = 65536
DRAIN_AFTER_EXIT = 1.0  # s: output still buffered when the command exits (its children may hold the tty)
EOT = b"\x04"  # ^D: the end of input on a terminal


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


async def _spawn(argv: list[str], env: dict[str, str], cwd: str | None, **streams) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, start_new_session=True, **streams)
    except OSError as exc:
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        raise DriverError(f'failed to exec "{argv[0]}": {detail}') from None


async def exec_process(
    argv: list[str], env: dict[str, str], cwd: str | None, tty: bool,
    stdin: AsyncIterator[ExecInput], output: ExecOutput, take_terminal: bool = True,
) -> int:
    """Run `argv` and stream its IO; returns the exit code (128+N when killed by signal N).
    With a tty, `take_terminal=False` leaves the pty without a controlling session, for a
    command that makes it its own further down (`setsid -c` inside a pid namespace)."""
    if not argv:
        raise DriverError("command is not present")
    if tty:
        return await _exec_in_pty(argv, env, cwd, stdin, output, take_terminal)
    return await _exec_with_pipes(argv, env, cwd, stdin, output)


async def _exec_with_pipes(argv, env, cwd, stdin: AsyncIterator[ExecInput], output: ExecOutput) -> int:
    pipe = asyncio.subprocess.PIPE
    proc = await _spawn(argv, env, cwd, stdin=pipe, stdout=pipe, stderr=pipe)

    async def pump(stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(READ_SIZE):
            await output(name, chunk)

    async def feed() -> None:
        assert proc.stdin is not None
        try:
            async for message in stdin:
                if message.data:
                    proc.stdin.write(message.data)
                    await proc.stdin.drain()
                if message.close:
                    break
        except (BrokenPipeError, ConnectionResetError):
            return
        proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        return _exit_code(await proc.wait())
    finally:
        feeder.cancel()
        _kill_group(proc)


def set_window_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(height, 0), max(width, 0), 0, 0))


def _take_terminal(tty_path: str) -> None:
    """In the child: the pty becomes its controlling terminal. asyncio's loop has already
    called setsid (start_new_session) and put the pty on fd 0 by now; uvloop runs this hook
    before both, so start the session here if needed and open the pty by its path."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    fd = os.open(tty_path, os.O_RDWR)
    try:
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    finally:
        os.close(fd)


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await asyncio.sleep(0.01)


async def _exec_in_pty(argv, env, cwd, stdin: AsyncIterator[ExecInput], output: ExecOutput, take_terminal: bool) -> int:
    master, slave = pty.openpty()
    try:
        proc = await _spawn(argv, env, cwd, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=functools.partial(_take_terminal, os.ttyname(slave)) if take_terminal else None)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the terminal closed it
            data = b""
        if not data:
            loop.remove_reader(master)
        chunks.put_nowait(data)

    async def pump() -> None:
        while data := await chunks.get():
            await output("stdout", data)

    async def feed() -> None:
        try:
            async for message in stdin:
                if message.tty_size:
                    set_window_size(master, *message.tty_size)
                if message.data:
                    await _write_all(master, message.data)
                if message.close:
                    await _write_all(master, EOT)
                    return
        except OSError:
            return

    loop.add_reader(master, readable)
    feeder = asyncio.create_task(feed())
    pumper = asyncio.create_task(pump())
    try:
        code = _exit_code(await proc.wait())
        try:
            await asyncio.wait_for(asyncio.shield(pumper), DRAIN_AFTER_EXIT)
        except asyncio.TimeoutError:
            pass
        return code
    finally:
        feeder.cancel()
        pumper.cancel()
        loop.remove_reader(master)
        os.close(master)
        _kill_group(proc)
