"""Copies a container's stdout and stderr into `alloc/logs/<task>.{stdout,stderr}.N`:
`python -S -E <this file> <follower-spec.json>` (`launch_argv`); `-m yurt.drivers.docker.logfollower`
works too.

It detaches like the raw_exec supervisor (fork + setsid), so the copy goes on while the
client agent restarts. It follows the engine's log of the container (json-file or local log
driver) with timestamps, and records the newest copied timestamp per stream in
`logpos.json` (at most every SAVE_INTERVAL); a follower started again later (the old one
died) resumes after it: no line is lost, and only lines copied in the last SAVE_INTERVAL
before a crash can be copied twice. It exits when the container has stopped and both streams
are drained. Both streams come over one engine request (multiplexed frames, as Nomad's
docker_logger reads them).

Start-up cost matters (one follower per container, started while the engine is busy starting
the others): run as a script without `site` it imports only stdlib modules and the stdlib-only
`logrotate` and `supervisor` beside the docker package, not the `yurt` package: ~43 ms of CPU
instead of ~200 ms. The driver does not even pay that per container: a launcher started once
(`launch_argv("--zygote", marker)`, as raw_exec's supervisor launcher) reads follower spec paths
on stdin and forks an already started interpreter for each (a few ms). It exits when its stdin
closes (the agent went away); the followers it forked are detached and live on.
"""

import json
import os
import re
import signal
import socket
import struct
import sys
import time

if __package__:
    from yurt.drivers.logrotate import FileRotator
    from yurt.drivers.supervisor import _detach, read_json, write_json_atomic
else:  # run as a script: logrotate.py and supervisor.py are in the directory above this one
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from logrotate import FileRotator
    from supervisor import _detach, read_json, write_json_atomic

FOLLOWER_SPEC_FILE = "logfollower.json"
FOLLOWER_PID_FILE = "logfollower.pid.json"
POSITION_FILE = "logpos.json"
FOLLOWER_DONE_FILE = "logfollower.done"
SAVE_INTERVAL = 0.25
STREAMS = {1: "stdout", 2: "stderr"}  # the multiplexed frame header's stream byte
TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def launch_argv(*args: str) -> list[str]:
    """The command that runs this file as a stdlib-only script: `launch_argv(spec_path)` one
    follower, `launch_argv("--zygote", marker)` a launcher (`marker`, e.g. the client's alloc
    dir, is only there for tools that look for a data dir's processes by command line)."""
    return [sys.executable, "-S", "-E", os.path.abspath(__file__), *args]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (datetime is not imported: see above)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_timestamp_ns(text: str) -> int:
    """Docker's RFC 3339 nano timestamp ("2026-11-26T18:19:03.0123Z") in unix ns."""
    match = TIMESTAMP.match(text.strip())
    if not match:
        raise ValueError(f"not a docker log timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        raise ValueError(f"not a docker log timestamp: {text!r}")
    seconds = _days_from_civil(int(year), int(month), int(day)) * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    if offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds * 1_000_000_000 + int(((fraction or "") + "000000000")[:9])


def split_frame(frame: bytes) -> tuple[int, bytes]:
    """`b"<timestamp> <payload>"` -> (unix ns, payload)."""
    stamp, _, payload = frame.partition(b" ")
    return parse_timestamp_ns(stamp.decode("ascii", "replace")), payload


class Positions:
    """Newest copied timestamp per stream, saved to disk at most every SAVE_INTERVAL."""

    def __init__(self, path: str):
        self.path = path
        self.values: dict[str, int] = {k: int(v) for k, v in (read_json(path) or {}).items()}
        self._saved_at = 0.0

    def get(self, stream: str) -> int:
        return self.values.get(stream, 0)

    def advance(self, stream: str, stamp_ns: int, force: bool = False) -> None:
        if stamp_ns > self.values.get(stream, 0):
            self.values[stream] = stamp_ns
        if force or time.monotonic() - self._saved_at >= SAVE_INTERVAL:
            write_json_atomic(self.path, dict(self.values))
            self._saved_at = time.monotonic()


def engine_socket(base_url: str = "") -> socket.socket:
    """A connected socket to the engine (unix or plain tcp)."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(url[len("unix://"):])
        return sock
    host, _, port = url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
    if not host or not port.isdigit():  # no port given
        host, port = host + (":" if host else "") + port, "2375"
    return socket.create_connection((host.strip("[]") or "localhost", int(port)))


def engine_stream(base_url: str, path: str):
    """The body of `GET path` as it arrives, in chunks. An HTTP/1.0 request, so the engine
    sends the body as is (no chunked encoding) and closes the connection at its end; done
    with a socket rather than http.client, whose import (email, ssl) costs more than the
    rest of this script."""
    sock = engine_socket(base_url)
    try:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"engine closed the connection before answering: {head[:200]!r}")
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b""
        if status != b"200":
            raise RuntimeError(f"engine answered {head.splitlines()[0]!r}: {body[:200]!r}")
        if body:
            yield body
        while chunk := sock.recv(65536):
            yield chunk
    finally:
        sock.close()


def multiplexed_batches(chunks):
    """The engine's multiplexed stream (8-byte header: stream byte, 3 zero bytes, big-endian size;
    then the payload) -> lists of (stream name, frame payload), one list per chunk read, so that
    a burst of lines is written at once."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        batch, pos = [], 0
        while len(pending) - pos >= 8:
            size = struct.unpack_from(">I", pending, pos + 4)[0]
            if len(pending) - pos - 8 < size:
                break
            batch.append((STREAMS.get(pending[pos], "stdout"), bytes(pending[pos + 8 : pos + 8 + size])))
            pos += 8 + size
        del pending[:pos]
        if batch:
            yield batch


def log_batches(spec: dict, since_s: int):
    """The container's log (stdout and stderr; a tty container has only stdout), followed, as
    lists of (stream name, timestamped frame)."""
    query = f"follow=1&timestamps=1&stdout=1&stderr=1&since={int(since_s)}"
    chunks = engine_stream(spec.get("base_url") or "", f"/containers/{spec['container_id']}/logs?{query}")
    yield from (_line_batches(chunks) if spec.get("tty") else multiplexed_batches(chunks))


def _line_batches(chunks):
    """A tty container's raw log stream, re-split into timestamped lines."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            yield [("stdout", line + b"\n") for line in lines]
    if pending:
        yield [("stdout", pending)]


def follow(spec: dict, positions: Positions) -> None:
    """Copy both streams until the engine ends the log (the container stopped)."""
    streams = ["stdout"] if spec.get("tty") else ["stdout", "stderr"]
    rotators = {s: FileRotator(spec[f"{s}_base"], int(spec.get("max_files", 10)), int(spec["max_file_size"]))
                for s in streams}
    last = {s: positions.get(s) for s in streams}
    try:
        for batch in log_batches(spec, min(last.values()) // 1_000_000_000):
            copied: dict[str, list[bytes]] = {}
            for stream, frame in batch:
                stamp, payload = split_frame(frame)
                if stream in last and stamp > last[stream]:  # else copied by an earlier follower
                    copied.setdefault(stream, []).append(payload)
                    last[stream] = stamp
            for stream, payloads in copied.items():
                rotators[stream].write(b"".join(payloads))
                positions.advance(stream, last[stream])
    finally:
        positions.advance(streams[0], 0, force=True)
        for rotator in rotators.values():
            rotator.close()


def run(spec: dict, state_dir: str) -> int:
    write_json_atomic(os.path.join(state_dir, FOLLOWER_PID_FILE), {"pid": os.getpid(), "started_at": time.time_ns()})
    positions = Positions(os.path.join(state_dir, POSITION_FILE))
    try:
        follow(spec, positions)
    except Exception:  # noqa: BLE001 - logged to the state dir's supervisor.log; the copy so far stays
        import traceback

        traceback.print_exc()
    write_json_atomic(os.path.join(state_dir, FOLLOWER_DONE_FILE), {"finished_at": time.time_ns()})
    return 0


def main(argv: list[str], fork: bool = True) -> int:
    if argv[:1] == ["--zygote"]:
        return zygote()
    spec_path = argv[0]
    state_dir = os.path.dirname(os.path.abspath(spec_path))
    with open(spec_path) as f:
        spec = json.load(f)
    if "--foreground" not in argv:
        _detach(state_dir, fork=fork)
    return run(spec, state_dir)


def zygote() -> int:
    """Fork a follower for each spec path read on stdin, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent's Ctrl-C is not for us
    # The followers are our children (one fork: the launcher leads its own session, so a child
    # can setsid itself); the kernel reaps them when they end.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin.buffer:
        spec_path = os.fsdecode(line.rstrip(b"\n"))
        if spec_path and os.fork() == 0:
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                code = main([spec_path], fork=False)
            except BaseException:  # noqa: BLE001 - stderr is the state dir's supervisor.log once detached
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
