"""A dev agent with a host volume runs a job with an artifact and a volume mount; `alloc fs`,
`alloc signal` and `alloc restart` act on the real allocation."""

import os
import signal
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .agents import REPO, YURT, wait_until, yurt

pytestmark = pytest.mark.timeout(120)

JOB = """
job "ops" {
  group "g" {
    volume "shared" {
      type   = "host"
      source = "shared"
    }
    task "t" {
      driver       = "raw_exec"
      kill_timeout = "1s"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'echo got-hup' HUP; echo started; cat local/plain.txt; while true; do sleep 0.1; done"]
      }
      artifact {
        source = "%(base)s/plain.txt"
        options { checksum = "sha256:%(sha)s" }
      }
      volume_mount {
        volume      = "shared"
        destination = "/shared"
      }
    }
  }
}
"""


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "plain.txt").write_text("artifact body\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def events(dev, alloc_id: str) -> list[str]:
    return [e["Type"] for e in dev.api(f"/v1/allocation/{alloc_id}")["TaskStates"]["t"]["Events"]]


def test_alloc_fs_signal_restart_on_a_real_alloc(cluster, files, tmp_path):
    import hashlib

    shared = tmp_path / "shared"
    shared.mkdir()
    dev = cluster("dev", "dev", extra_hcl=f'client {{\n  host_volume "shared" {{\n    path = "{shared}"\n  }}\n}}\n')
    dev.start()
    node = dev.api("/v1/nodes")[0]
    assert dev.api(f"/v1/node/{node['ID']}")["HostVolumes"] == {"shared": {"Path": str(shared), "ReadOnly": False}}

    job_file = tmp_path / "ops.nomad.hcl"
    job_file.write_text(JOB % {"base": files, "sha": hashlib.sha256(b"artifact body\n").hexdigest()})
    yurt(dev.address, "job", "run", "-detach", str(job_file))
    alloc = wait_until(lambda: [a for a in dev.api("/v1/job/ops/allocations") if a["ClientStatus"] == "running"],
                       what="ops to run")[0]
    alloc_id = alloc["ID"]
    assert events(dev, alloc_id)[:4] == ["Received", "Task Setup", "Downloading Artifacts", "Started"]

    listing = yurt(dev.address, "alloc", "fs", alloc_id[:8]).stdout
    assert listing.splitlines()[0].split() == ["Mode", "Size", "Modified", "Time", "Name"]
    assert {"alloc/", "t/"} <= {line.split()[-1] for line in listing.splitlines()[1:]}
    assert yurt(dev.address, "alloc", "fs", alloc_id, "t/local/plain.txt").stdout == "artifact body\n"
    stat = yurt(dev.address, "alloc", "fs", "-stat", "-H", alloc_id, "t/local/plain.txt").stdout
    assert stat.splitlines()[1].split()[1] == "14" and stat.rstrip().endswith("plain.txt")
    missing = yurt(dev.address, "alloc", "fs", alloc_id, "t/local/nope", check=False)
    assert missing.returncode == 1 and "Unexpected response code: 404" in missing.stderr

    yurt(dev.address, "alloc", "signal", "-s", "SIGHUP", alloc_id, "t")
    wait_until(lambda: "got-hup" in yurt(dev.address, "alloc", "fs", alloc_id, "alloc/logs/t.stdout.0").stdout,
               what="the task to see SIGHUP")
    assert "Signaling" in events(dev, alloc_id)

    yurt(dev.address, "alloc", "restart", alloc_id, "t")
    wait_until(lambda: yurt(dev.address, "alloc", "fs", alloc_id, "alloc/logs/t.stdout.0").stdout.count("started") == 2,
               what="the task to start again")
    after = events(dev, alloc_id)
    assert "Restart Signaled" in after and "Restarting" in after
    assert after.count("Downloading Artifacts") == 1  # fetched once per alloc, as in Nomad
    tail = yurt(dev.address, "alloc", "fs", "-tail", "-n", "1", alloc_id, "t/local/plain.txt").stdout
    assert tail == "artifact body\n"
    check_follow(dev, alloc_id)


def check_follow(dev, alloc_id: str) -> None:
    """`alloc fs -f -tail -n 1` prints the last line, then what the task writes next, until ^C."""
    env = dict(os.environ, NOMAD_ADDR=dev.address)
    proc = subprocess.Popen([*YURT, "alloc", "fs", "-f", "-tail", "-n", "1", alloc_id, "alloc/logs/t.stdout.0"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: lines, what="the followed file's last line")
        assert lines == ["artifact body\n"]
        yurt(dev.address, "alloc", "signal", "-s", "SIGHUP", alloc_id)
        wait_until(lambda: "got-hup\n" in lines, what="the followed file to grow")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
