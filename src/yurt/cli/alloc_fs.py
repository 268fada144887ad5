"""`alloc fs`: list, stat, print, tail and follow files in an allocation's directory."""

import base64
import json
import random
from datetime import datetime

import httpx

from yurt.api import APIError

from .alloc_cmds import BYTES_TO_LINES, DEFAULT_TAIL_LINES, last_lines
from .alloc_status import find_alloc
from .command import Command, CommandError, interruptible
from .format import format_datetime, format_list, ibytes


def format_mod_time(text: str) -> str:
    """Go's `formatTime`: ISO 8601 in the time's own zone; empty for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return ""
    try:
        return format_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def file_rows(files: list[dict], machine: bool, content_type: bool) -> list[str]:
    header = "Mode|Size|Modified Time|Content Type|Name" if content_type else "Mode|Size|Modified Time|Name"
    rows = [header]
    for f in files:
        name = f.get("Name", "") + ("/" if f.get("IsDir") else "")
        size = str(f.get("Size", 0)) if machine else ibytes(int(f.get("Size", 0)))
        cells = [f.get("FileMode", ""), size, format_mod_time(f.get("ModTime", ""))]
        if content_type:
            cells.append(f.get("ContentType", ""))
        rows.append("|".join([*cells, name]))
    return rows


def _route(op: str, alloc_id: str) -> str:
    return f"/v1/client/fs/{op}/{alloc_id}"


class FrameDecoder:
    """Nomad's StreamFrame objects (`{"Offset", "Data" (base64), "File"}`, heartbeats `{}`),
    written back to back, decoded from arbitrary chunks."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()

    def feed(self, text: str) -> list[dict]:
        self._buffer += text
        frames = []
        while True:
            stripped = self._buffer.lstrip()
            if not stripped:
                self._buffer = ""
                return frames
            try:
                frame, end = self._decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                self._buffer = stripped
                return frames
            self._buffer = stripped[end:]
            frames.append(frame)


class AllocFSCommand(Command):
    name = "alloc fs"
    synopsis = "Inspect the contents of an allocation directory"
    help = """
Usage: yurt alloc fs [options] <allocation> <path>
Alias: yurt fs

  fs displays either the contents of an allocation directory for the passed
  allocation, or displays the file at the given path. The path is relative to
  the root of the alloc dir and defaults to root if unspecified.

  When ACLs are enabled, this command requires a token with the 'read-fs',
  'read-job', and 'list-jobs' capabilities for the allocation's namespace.

{general}

FS Specific Options:

  -H
    Machine friendly output.

  -verbose
    Show full information.

  -job <job-id>
    Use a random allocation from the specified job ID.

  -stat
    Show file stat information instead of displaying the file, or listing the directory.

  -f
    Causes the output to not stop when the end of the file is reached, but rather to
    wait for additional output.

  -tail
    Show the files contents with offsets relative to the end of the file. If no
    offset is given, -n is defaulted to 10.

  -n
    Sets the tail location in best-efforted number of lines relative to the end
    of the file.

  -c
    Sets the tail location in number of bytes relative to the end of the file.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("verbose", "H", "job", "stat", "f", "tail"):
            self.flags.bool(name)
        self.flags.int("n", -1).int("c", -1)

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not rest:
            return self.usage_error("A job ID is required" if self.flag("job") else "An allocation ID is required")
        if len(rest) > 2:
            return self.usage_error("This command takes one or two arguments: <allocation> [<path>]")
        path = rest[1] if len(rest) == 2 else "/"
        alloc_ref = self._random_job_alloc(rest[0]) if self.flag("job") else rest[0]
        alloc = find_alloc(self, alloc_ref, multiple_is_error=True)
        assert alloc is not None
        alloc_id = alloc["ID"]
        info = self._fs("stat", alloc_id, path)
        if self.flag("stat"):
            self.output(format_list(file_rows([info] if info else [], self.flag("H"), content_type=True)))
            return 0
        if info.get("IsDir"):
            try:
                files = self._fs("ls", alloc_id, path)
            except CommandError as exc:
                raise CommandError(f"Error listing alloc dir: {exc}") from exc
            self.output(format_list(file_rows(files or [], self.flag("H"), content_type=False)))
            return 0
        if self.flag("tail"):
            self._tail(alloc_id, path, int(info.get("Size", 0)))
        elif self.flag("f"):
            self._follow(alloc_id, path, "start", 0, -1, "Error reading file")
        else:
            self._copy(_route("cat", alloc_id), "Error reading file", path=path)
        return 0

    def _random_job_alloc(self, job_id: str) -> str:
        try:
            allocs = self.client().get(f"/v1/job/{job_id}/allocations") or []
        except (APIError, httpx.HTTPError) as exc:
            raise CommandError(f'Error fetching allocations: error querying job "{job_id}": {exc}') from exc
        if not allocs:
            raise CommandError(f'Error fetching allocations: job "{job_id}" doesn\'t exist or it has no allocations')
        running = [a for a in allocs if a.get("ClientStatus") == "running"] or allocs
        return random.choice(running)["ID"]

    def _fs(self, op: str, alloc_id: str, path: str):
        """A `/v1/client/fs/<op>` JSON answer; API errors print as Nomad's api client words them."""
        try:
            return self.client().get(_route(op, alloc_id), path=path)
        except APIError as exc:
            raise CommandError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise CommandError(str(exc)) from exc

    def _tail(self, alloc_id: str, path: str, size: int) -> None:
        lines, count = self.flag("n"), self.flag("c")
        if lines != -1 and count != -1:
            raise CommandError("Both -n and -c are not allowed")
        if lines < -1 or count < -1:
            raise CommandError("Invalid size is specified")
        offset = DEFAULT_TAIL_LINES * BYTES_TO_LINES
        if lines != -1:
            offset = lines * BYTES_TO_LINES
        elif count != -1:
            offset = count
        else:
            lines = DEFAULT_TAIL_LINES
        offset = min(offset, size)
        if self.flag("f"):
            self._follow(alloc_id, path, "end", offset, lines, "Error tailing file")
            return
        self._copy(_route("readat", alloc_id), "Error tailing file", lines=lines, path=path,
                   offset=size - offset, limit=-1)

    def _copy(self, route: str, what: str, lines: int = -1, **query) -> None:
        data = b""
        try:
            with self.client().stream(route, **query) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise CommandError(f"{what}: {APIError(resp.status_code, resp.text)}")
                if lines != -1:
                    data = resp.read()
                else:
                    for chunk in resp.iter_bytes():
                        self._write(chunk)
        except httpx.HTTPError as exc:
            raise CommandError(f"{what}: {exc}") from exc
        if lines != -1:
            self._write(last_lines(data.decode(errors="replace"), lines).encode())

    def _follow(self, alloc_id: str, path: str, origin: str, offset: int, lines: int, what: str) -> None:
        """Stream frames until interrupted; with `lines`, print only the last lines of what is
        there at first (up to the stream's first idle heartbeat), then everything new."""
        decoder, pending = FrameDecoder(), bytearray()
        holding = lines != -1
        try:
            with interruptible(), \
                    self.client().stream(_route("stream", alloc_id), path=path, origin=origin, offset=offset) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise CommandError(f"{what}: {APIError(resp.status_code, resp.text)}")
                for chunk in resp.iter_text():
                    for frame in decoder.feed(chunk):
                        data = base64.b64decode(frame.get("Data") or "")
                        if not holding:
                            if data:
                                self._write(data)
                        elif data:
                            pending += data
                        else:  # a heartbeat: what the file held is all here
                            holding = False
                            self._write(last_lines(pending.decode(errors="replace"), lines).encode())
        except KeyboardInterrupt:
            pass
        except httpx.HTTPError as exc:
            raise CommandError(f"{what}: {exc}") from exc
        if holding:
            self._write(last_lines(pending.decode(errors="replace"), lines).encode())

    def _write(self, data: bytes) -> None:
        out = self.ctx.out
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode(errors="replace"))
            out.flush()
