"""Streaming file and log contents over HTTP: Nomad's StreamFrame JSON objects
(`{"Offset", "Data" (base64), "File"}`, heartbeats `{}`) or plain bytes."""

import asyncio
import base64
import json
import os
import time

from aiohttp import web

from .allocfs import LogFile, find_closest, log_files

FRAME_SIZE = 64 * 1024
POLL_INTERVAL = 0.1
HEARTBEAT_INTERVAL = 1.0


class Framer:
    """Writes frames (or plain data) to a prepared StreamResponse."""

    def __init__(self, resp: web.StreamResponse, plain: bool):
        self.resp = resp
        self.plain = plain
        self._last_send = time.monotonic()

    async def send(self, file: str, data: bytes, offset: int) -> None:
        if self.plain:
            await self.resp.write(data)
        else:
            frame = {"Offset": offset, "Data": base64.b64encode(data).decode(), "File": file}
            await self.resp.write(json.dumps(frame).encode())
        self._last_send = time.monotonic()

    async def heartbeat_if_idle(self) -> None:
        if not self.plain and time.monotonic() - self._last_send >= HEARTBEAT_INTERVAL:
            await self.resp.write(b"{}")
            self._last_send = time.monotonic()


async def _pump(framer: Framer, path: str, rel: str, offset: int, stop_at_eof, follow: bool) -> None:
    """Send `path` from `offset`; at EOF stop if `stop_at_eof()` says so, else wait for growth."""
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            data = f.read(FRAME_SIZE)
            if data:
                offset += len(data)
                await framer.send(rel, data, offset)
                continue
            if not follow or stop_at_eof():
                # one last read: data may have landed between the read and the check
                rest = f.read()
                if rest:
                    offset += len(rest)
                    await framer.send(rel, rest, offset)
                return
            await framer.heartbeat_if_idle()
            await asyncio.sleep(POLL_INTERVAL)


async def stream_logs(
    framer: Framer, log_dir: str, task: str, log_type: str, follow: bool, offset: int, origin: str
) -> None:
    """Nomad's log streaming across rotated files `<task>.<type>.N`."""
    next_index = 0 if origin == "start" else 2**62
    if origin == "end":
        offset = -offset
    while True:
        files = log_files(log_dir, task, log_type)
        if not files:
            return
        max_index = files[-1].index
        chosen, open_offset = find_closest(files, next_index, offset)
        if not follow and chosen.index > max_index:
            return
        exit_after = not follow and chosen.index == max_index
        rel = os.path.join("alloc", "logs", os.path.basename(chosen.path))

        def has_next(idx: int = chosen.index) -> bool:
            return any(f.index > idx for f in log_files(log_dir, task, log_type))

        try:
            await _pump(framer, chosen.path, rel, open_offset, has_next, follow=not exit_after)
        except FileNotFoundError:
            continue  # rotated out from under us: list again
        if exit_after or (not follow and not has_next()):
            return
        offset, next_index = 0, chosen.index + 1


async def stream_file(framer: Framer, full: str, rel: str, offset: int) -> None:
    """`/v1/client/fs/stream`: a file from `offset`, following it until the client leaves."""
    await _pump(framer, full, rel, offset, lambda: not os.path.exists(full), follow=True)


def first_log(log_dir: str, task: str, log_type: str) -> LogFile | None:
    files = log_files(log_dir, task, log_type)
    return files[0] if files else None
