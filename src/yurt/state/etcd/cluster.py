"""A real multi-member etcd cluster on loopback ports in a directory (tests, `scripts/etcd-cluster`);
standard library only, so the script runs with any python3.

`scripts/etcd-cluster start DIR [N]` starts N members (3 by default) detached,
records them in `DIR/cluster.json` and prints the client endpoints, comma separated;
`scripts/etcd-cluster stop DIR` kills them and removes DIR.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

ETCD = "etcd"


def etcd_binary() -> str | None:
    return shutil.which(ETCD)


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    pid: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    directory: str
    members: list[Member] = field(default_factory=list)
    token: str = "yurt"

    @classmethod
    def create(cls, directory: str, size: int = 3) -> "EtcdCluster":
        ports = _free_ports(2 * size)
        members = [Member(f"m{i}", ports[2 * i], ports[2 * i + 1]) for i in range(size)]
        return cls(directory, members, token=f"yurt-{os.getpid()}-{int(time.time())}")

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def _argv(self, m: Member, state: str) -> list[str]:
        initial = ",".join(f"{o.name}={o.peer_url}" for o in self.members)
        return [
            etcd_binary() or ETCD, "--name", m.name, "--data-dir", os.path.join(self.directory, m.name),
            "--listen-client-urls", m.endpoint, "--advertise-client-urls", m.endpoint,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", state,
            "--initial-cluster-token", self.token, "--heartbeat-interval", "100", "--election-timeout", "1000",
            "--logger", "zap", "--log-level", "warn",
        ]

    def start(self, timeout: float = 30.0) -> "EtcdCluster":
        os.makedirs(self.directory, exist_ok=True)
        for m in self.members:
            self.start_member(m, state="new")
        self.wait_healthy(timeout)
        self.save()
        return self

    def start_member(self, m: Member, state: str = "existing") -> None:
        log = open(os.path.join(self.directory, f"{m.name}.log"), "ab")
        proc = subprocess.Popen(self._argv(m, state), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        m.pid = proc.pid

    def wait_healthy(self, timeout: float = 30.0, members: list[Member] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(members or self.members)
        while pending:
            m = pending[0]
            try:
                with urllib.request.urlopen(m.endpoint + "/health", timeout=1) as resp:
                    healthy = json.load(resp).get("health") == "true"
                if healthy:
                    pending.pop(0)
                    continue
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd member {m.name} at {m.endpoint} not healthy after {timeout}s "
                                   f"(see {self.directory}/{m.name}.log)")
            time.sleep(0.1)

    def kill_member(self, m: Member, sig: int = signal.SIGKILL) -> None:
        if m.pid:
            try:
                os.kill(m.pid, sig)
            except ProcessLookupError:
                pass
            _reap(m.pid)
            m.pid = 0

    def stop(self) -> None:
        for m in self.members:
            self.kill_member(m, signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)

    def save(self) -> None:
        data = {"token": self.token, "members": [vars(m) for m in self.members]}
        with open(os.path.join(self.directory, "cluster.json"), "w") as f:
            json.dump(data, f)

    @classmethod
    def load(cls, directory: str) -> "EtcdCluster":
        with open(os.path.join(directory, "cluster.json")) as f:
            data = json.load(f)
        return cls(directory, [Member(**m) for m in data["members"]], token=data["token"])


def _reap(pid: int) -> None:
    """Wait (briefly) for a killed member to exit; it may not be our child (CLI `stop`)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    usage = "usage: etcd-cluster start DIR [MEMBERS] | stop DIR"
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print(usage, file=sys.stderr)
        return 1
    directory = os.path.abspath(argv[1])
    if argv[0] == "stop":
        if not os.path.exists(os.path.join(directory, "cluster.json")):
            print(f"no etcd cluster in {directory}", file=sys.stderr)
            return 1
        EtcdCluster.load(directory).stop()
        return 0
    if etcd_binary() is None:
        print("etcd is not installed (Debian: apt-get install etcd-server)", file=sys.stderr)
        return 1
    size = int(argv[2]) if len(argv) > 2 else 3
    cluster = EtcdCluster.create(directory, size)
    try:
        cluster.start()
    except TimeoutError as exc:
        cluster.stop()
        print(str(exc), file=sys.stderr)
        return 1
    print(",".join(cluster.endpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
