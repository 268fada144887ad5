"""`alloc exec`: run a command inside a running task over Nomad's exec websocket
(`/v1/client/allocation/:id/exec`), piping stdin, stdout and stderr, in a pty with `-t`."""

import asyncio
import base64
import json
import os
import signal
import sys
import threading
from urllib.parse import urlencode

from .alloc_cmds import alloc_task, check_task
from .alloc_status import find_alloc
from .command import Command, CommandError

READ_SIZE = 4096


class EscapeFilter:
    """ssh-style escapes on a terminal: the escape character at the start of a line followed by
    '.' ends the session; the escape character typed twice sends it once."""

    def __init__(self, escape: str):
        self.escape = escape.encode() if escape and escape != "none" else b""
        self.line_start = True
        self.pending = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send, whether the user asked to disconnect)."""
        if not self.escape:
            return data, False
        sent = bytearray()
        for byte in data:
            char = bytes([byte])
            if self.pending:
                self.pending = False
                if char == b".":
                    return bytes(sent), True
                sent += self.escape if char == self.escape else self.escape + char
            elif self.line_start and char == self.escape:
                self.pending = True
                continue
            else:
                sent += char
            self.line_start = char in (b"\r", b"\n")
        return bytes(sent), False


class AllocExecCommand(Command):
    name = "alloc exec"
    synopsis = "Execute commands in task"
    help = """
Usage: yurt alloc exec [options] <allocation> <command>

  Run command inside the environment of the given allocation and task.

{general}

Exec Specific Options:

  -task <task-name>
    Sets the task to exec command in

  -job
    Use a random allocation from the specified job ID.

  -i
    Pass stdin to the container, defaults to true.  Pass -i=false to disable.

  -t
    Allocate a pseudo-tty, defaults to true if stdin is detected to be a tty session.
    Pass -t=false to disable explicitly.

  -e <escape_char>
    Sets the escape character for sessions with a pty (default: '~').  The escape
    character is only recognized at the beginning of a line.  The escape character
    followed by a dot ('.') closes the connection.  Setting the character to
    'none' disables any escapes and makes the session fully transparent.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.string("task").bool("job").bool("i", True).optbool("t").string("e", "~")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        escape = self.flag("e")
        if escape != "none" and len(escape) != 1:
            return self.usage_error("-e requires 'none' or a single character")
        if not rest:
            return self.usage_error("A job ID is required" if self.flag("job") else "An allocation ID is required")
        if len(rest) < 2:
            return self.usage_error("A command is required")
        alloc = self._alloc(rest[0])
        task = self.flag("task")
        if task:
            check_task(alloc, task)
        else:
            task = alloc_task(alloc)
        stdin_fd = self._stdin_fd()
        tty = self.flag("t") if self.flag("t") is not None else stdin_fd is not None and os.isatty(stdin_fd)
        return asyncio.run(self._session(alloc, task, rest[1:], bool(tty), stdin_fd, escape))

    def _alloc(self, ref: str) -> dict:
        if not self.flag("job"):
            alloc = find_alloc(self, ref, multiple_is_error=True)
            assert alloc is not None
            return alloc
        job_id, ns = self.job_id_by_prefix(ref)
        allocs = [a for a in self.query("Error querying job allocations", f"/v1/job/{job_id}/allocations",
                                        namespace=ns) if a.get("ClientStatus") == "running"]
        if not allocs:
            raise CommandError(f"No running allocations found for job {job_id}")
        return self.query("Error querying allocation", f"/v1/allocation/{allocs[0]['ID']}", namespace=ns)

    def _stdin_fd(self) -> int | None:
        if not self.flag("i"):
            return None
        try:
            return self.ctx.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def _url(self, alloc: dict, task: str, command: list[str], tty: bool) -> str:
        cfg = self.client_config()
        params = {"task": task, "command": json.dumps(command), "tty": "true" if tty else "false"}
        if alloc.get("Namespace"):
            params["namespace"] = alloc["Namespace"]
        if cfg.region:
            params["region"] = cfg.region
        return f"{cfg.address.rstrip('/')}/v1/client/allocation/{alloc['ID']}/exec?{urlencode(params)}"

    async def _session(self, alloc: dict, task: str, command: list[str], tty: bool, stdin_fd: int | None,
                       escape: str) -> int:
        import aiohttp

        token = self.client_config().token
        headers = {"X-Nomad-Token": token} if token else {}
        terminal = stdin_fd is not None and tty and os.isatty(stdin_fd)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(self._url(alloc, task, command, tty), headers=headers,
                                              autoclose=False, max_msg_size=0) as ws:
                    with _raw_terminal(stdin_fd if terminal else None):
                        sender = asyncio.create_task(self._send_input(ws, stdin_fd, tty, terminal, escape))
                        try:
                            return await self._receive_output(ws)
                        finally:
                            sender.cancel()
        except aiohttp.WSServerHandshakeError as exc:
            raise CommandError(f"failed to exec into task: Unexpected response code: {exc.status} ({exc.message})") from None
        except aiohttp.ClientError as exc:
            raise CommandError(f"failed to exec into task: {exc}") from None

    async def _send_input(self, ws, stdin_fd: int | None, tty: bool, terminal: bool, escape: str) -> None:
        loop = asyncio.get_running_loop()
        if tty:
            await self._send_tty_size(ws)
            if terminal:
                loop.add_signal_handler(signal.SIGWINCH, lambda: asyncio.ensure_future(self._send_tty_size(ws)))
        if stdin_fd is None:
            await ws.send_str(json.dumps({"stdin": {"close": True}}))
            return
        chunks: asyncio.Queue[bytes] = asyncio.Queue()
        threading.Thread(target=_read_stdin, args=(stdin_fd, loop, chunks), daemon=True).start()
        escapes = EscapeFilter(escape if terminal else "none")
        while chunk := await chunks.get():
            data, disconnect = escapes.feed(chunk)
            if data:
                await ws.send_str(json.dumps({"stdin": {"data": base64.b64encode(data).decode()}}))
            if disconnect:
                await ws.close()
                return
        await ws.send_str(json.dumps({"stdin": {"close": True}}))

    async def _send_tty_size(self, ws) -> None:
        for stream in (sys.stdout, sys.stdin):
            try:
                size = os.get_terminal_size(stream.fileno())
            except (OSError, ValueError, AttributeError):
                continue
            await ws.send_str(json.dumps({"tty_size": {"height": size.lines, "width": size.columns}}))
            return

    async def _receive_output(self, ws) -> int:
        import aiohttp

        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = json.loads(msg.data)
                for stream, target in (("stdout", self.ctx.out), ("stderr", self.ctx.err)):
                    data = (frame.get(stream) or {}).get("data")
                    if data:
                        _write(target, base64.b64decode(data))
                if frame.get("exited"):
                    return int((frame.get("result") or {}).get("exit_code") or 0)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.ERROR):
                reason = msg.extra if isinstance(msg.extra, str) and msg.extra else ""
                if not reason and ws.closed and msg.type != aiohttp.WSMsgType.ERROR:
                    return 1  # the user disconnected with the escape sequence
                raise CommandError(f"failed to exec into task: {reason or 'connection closed'}")


def _read_stdin(fd: int, loop: asyncio.AbstractEventLoop, chunks: asyncio.Queue) -> None:
    """A daemon thread: a blocked read never holds up the exit."""
    while True:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError:
            data = b""
        loop.call_soon_threadsafe(chunks.put_nowait, data)
        if not data:
            return


def _write(stream, data: bytes) -> None:
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode(errors="replace"))
        stream.flush()


class _raw_terminal:
    """The local terminal in raw mode for the session (restored after), when `fd` is one."""

    def __init__(self, fd: int | None):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
