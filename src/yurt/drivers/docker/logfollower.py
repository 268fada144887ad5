"""Copies a container's stdout and stderr into `alloc/logs/<task>.{stdout,stderr}.N`:
`python -m yurt.drivers.docker.logfollower <follower-spec.json>`.

It detaches like the raw_exec supervisor (fork + setsid), so the copy goes on while the
client agent restarts. It follows the engine's log of the container (json-file or local log
driver) with timestamps, and records the newest copied timestamp per stream in
`logpos.json` (at most every SAVE_INTERVAL); a follower started again later (the old one
died) resumes after it: no line is lost, and only lines copied in the last SAVE_INTERVAL
before a crash can be copied twice. It exits when the container has stopped and both streams
are drained.
"""

import functools
import http.client
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any

from yurt.drivers.logrotate import FileRotator
from yurt.drivers.supervisor import _detach, read_json, write_json_atomic

FOLLOWER_SPEC_FILE = "logfollower.json"
FOLLOWER_PID_FILE = "logfollower.pid.json"
POSITION_FILE = "logpos.json"
FOLLOWER_DONE_FILE = "logfollower.done"
SAVE_INTERVAL = 0.25
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


@functools.lru_cache(maxsize=64)
def _epoch_seconds(seconds: str, offset: str) -> int:
    offset = "+00:00" if offset == "Z" else offset
    return int(datetime.fromisoformat(seconds + offset).astimezone(timezone.utc).timestamp())


def parse_timestamp_ns(text: str) -> int:
    """Docker's RFC 3339 nano timestamp ("2026-11-26T18:19:03.0123Z") in unix ns."""
    match = TIMESTAMP.match(text.strip())
    if not match:
        raise ValueError(f"not a docker log timestamp: {text!r}")
    seconds, fraction, offset = match.groups()
    return _epoch_seconds(seconds, offset) * 1_000_000_000 + int(((fraction or "") + "000000000")[:9])


def split_frame(frame: bytes) -> tuple[int, bytes]:
    """`b"<timestamp> <payload>"` -> (unix ns, payload)."""
    stamp, _, payload = frame.partition(b" ")
    return parse_timestamp_ns(stamp.decode("ascii", "replace")), payload


class Positions:
    """Newest copied timestamp per stream, saved to disk at most every SAVE_INTERVAL."""

    def __init__(self, path: str):
        self.path = path
        self.values: dict[str, int] = {k: int(v) for k, v in (read_json(path) or {}).items()}
        self._lock = threading.Lock()
        self._saved_at = 0.0

    def get(self, stream: str) -> int:
        return self.values.get(stream, 0)

    def advance(self, stream: str, stamp_ns: int, force: bool = False) -> None:
        with self._lock:
            if stamp_ns > self.values.get(stream, 0):
                self.values[stream] = stamp_ns
            if force or time.monotonic() - self._saved_at >= SAVE_INTERVAL:
                write_json_atomic(self.path, dict(self.values))
                self._saved_at = time.monotonic()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.socket_path)
        self.sock = sock


def engine_connection(base_url: str = "") -> http.client.HTTPConnection:
    """A plain HTTP connection to the engine (the SDK is not imported: it is slow to load)."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return UnixHTTPConnection(url[len("unix://"):])
    parsed = urllib.parse.urlparse(url.replace("tcp://", "http://", 1))
    return http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port or 2375)


def multiplexed_batches(chunks):
    """The engine's multiplexed stream (8-byte header, then payload) -> lists of frame payloads,
    one list per chunk read, so that a burst of lines is written at once."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        batch, pos = [], 0
        while len(pending) - pos >= 8:
            size = struct.unpack_from(">I", pending, pos + 4)[0]
            if len(pending) - pos - 8 < size:
                break
            batch.append(bytes(pending[pos + 8 : pos + 8 + size]))
            pos += 8 + size
        del pending[:pos]
        if batch:
            yield batch


def log_batches(spec: dict[str, Any], stream: str, since_s: int):
    """The container's log of one stream, followed, as lists of timestamped frames."""
    query = urllib.parse.urlencode({
        "follow": 1, "timestamps": 1, "stdout": int(stream == "stdout"), "stderr": int(stream == "stderr"),
        "since": since_s,
    })
    conn = engine_connection(spec.get("base_url") or "")
    try:
        conn.request("GET", f"/containers/{spec['container_id']}/logs?{query}")
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"engine answered {response.status}: {response.read()[:200]!r}")
        chunks = iter(lambda: response.read1(65536), b"")
        if spec.get("tty"):
            yield from _line_batches(chunks)
        else:
            yield from multiplexed_batches(chunks)
    finally:
        conn.close()


def _line_batches(chunks):
    """A tty container's raw log stream, re-split into timestamped lines."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            yield [line + b"\n" for line in lines]
    if pending:
        yield [pending]


def follow_stream(spec: dict[str, Any], stream: str, positions: Positions) -> None:
    rotator = FileRotator(spec[f"{stream}_base"], int(spec.get("max_files", 10)), int(spec["max_file_size"]))
    last = positions.get(stream)
    try:
        for batch in log_batches(spec, stream, last // 1_000_000_000):
            newest, payloads = 0, []
            for frame in batch:
                stamp, payload = split_frame(frame)
                if stamp > last:  # else copied by an earlier follower
                    payloads.append(payload)
                    newest = stamp
            if payloads:
                rotator.write(b"".join(payloads))
                positions.advance(stream, newest)
    finally:
        positions.advance(stream, 0, force=True)
        rotator.close()


def run(spec: dict[str, Any], state_dir: str) -> int:
    write_json_atomic(os.path.join(state_dir, FOLLOWER_PID_FILE), {"pid": os.getpid(), "started_at": time.time_ns()})
    positions = Positions(os.path.join(state_dir, POSITION_FILE))
    streams = ["stdout"] if spec.get("tty") else ["stdout", "stderr"]
    threads = [threading.Thread(target=follow_stream, args=(spec, s, positions), daemon=True) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    write_json_atomic(os.path.join(state_dir, FOLLOWER_DONE_FILE), {"finished_at": time.time_ns()})
    return 0


def main(argv: list[str]) -> int:
    spec_path = argv[0]
    state_dir = os.path.dirname(os.path.abspath(spec_path))
    with open(spec_path) as f:
        spec = json.load(f)
    if "--foreground" not in argv:
        _detach(state_dir)
    return run(spec, state_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
