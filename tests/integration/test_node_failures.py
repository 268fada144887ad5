"""Issue 6, nodes and failures, with real agents (1 server, 2 clients, short heartbeat TTLs):
a client killed for good, a client cut off and back (SIGSTOP / SIGCONT) under a disconnect
block, a task that always fails (restart, reschedule with growing delays, attempt limit),
a drain with migrate.max_parallel = 1, and a client that loses its server stopping its
allocs after stop_on_client_after."""

import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from yurt.structs.timefmt import parse_rfc3339_ns

from .agents import YURT, wait_until, yurt

pytestmark = pytest.mark.timeout(120)

MIN_TTL, GRACE = 2.0, 2.0
# TTL = min_ttl plus up to min_ttl of stagger; the server waits TTL + grace.
DETECT = 2 * MIN_TTL + GRACE
SERVER_HCL = f"""
server {{
  min_heartbeat_ttl = "{int(MIN_TTL)}s"
  heartbeat_grace   = "{int(GRACE)}s"
}}
"""

LOOP_TASK = """
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo $$ > ${NOMAD_ALLOC_DIR}/data/pid; while true; do sleep 0.2; done"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
"""


def job_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.nomad.hcl"
    path.write_text(textwrap.dedent(text))
    return str(path)


def start(cluster, clients=("c1", "c2")):
    """A server and its clients, started side by side."""
    server = cluster("srv", "server", extra_hcl=SERVER_HCL)
    agents = [cluster(name, "client", servers=[f"127.0.0.1:{server.port}"]) for name in clients]
    for agent in (server, *agents):
        agent.start(wait=False)
    for agent in (server, *agents):
        wait_until(agent.ready, timeout=30, what=f"agent {agent.name} to answer")
    wait_until(lambda: len(ready_nodes(server)) == len(agents), what="clients to register")
    return server, agents


def ready_nodes(server) -> dict[str, str]:
    return {n["Name"]: n["ID"] for n in server.api("/v1/nodes") if n["Status"] == "ready"}


def allocs(server, job: str) -> list[dict]:
    return server.api(f"/v1/job/{job}/allocations")


def running(server, job: str) -> list[dict]:
    return [a for a in allocs(server, job) if a["ClientStatus"] == "running" and a["DesiredStatus"] == "run"]


def task_pid(agent, alloc_id: str) -> int:
    return int((agent.data_dir / "alloc" / alloc_id / "alloc" / "data" / "pid").read_text().strip())


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[1].split()[0] not in ("Z", "X")


def agent_of(agents, server, alloc: dict):
    names = {n["ID"]: n["Name"] for n in server.api("/v1/nodes")}
    return next(a for a in agents if a.name == names[alloc["NodeID"]])


def test_killed_client_allocs_are_lost_and_replaced_elsewhere(cluster, tmp_path):
    server, agents = start(cluster)
    path = job_file(tmp_path, "lost", f'job "lost" {{\n  group "g" {{\n{LOOP_TASK}  }}\n}}\n')
    yurt(server.address, "job", "run", "-detach", path)
    (first,) = wait_until(lambda: running(server, "lost"), what="the alloc to run")
    victim = agent_of(agents, server, first)
    victim.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    lost = wait_until(lambda: next((a for a in allocs(server, "lost")
                                    if a["ID"] == first["ID"] and a["ClientStatus"] == "lost"), None),
                      timeout=DETECT + 10, what="the alloc to be lost")
    assert lost["DesiredStatus"] == "stop"
    assert time.monotonic() - killed_at < DETECT + 10
    node = server.api(f"/v1/node/{first['NodeID']}")
    assert node["Status"] == "down"
    (replacement,) = wait_until(lambda: running(server, "lost"), what="a replacement to run")
    full = server.api(f"/v1/allocation/{replacement['ID']}")
    assert full["NodeID"] != first["NodeID"] and full["PreviousAllocation"] == first["ID"]


DISCONNECT_JOB = f"""
job "cutoff" {{
  group "g" {{
    disconnect {{
      lost_after = "60s"
      reconcile  = "keep_original"
    }}
{LOOP_TASK}  }}
}}
"""


def test_cut_off_client_comes_back_and_keeps_its_tasks(cluster, tmp_path):
    server, agents = start(cluster)
    yurt(server.address, "job", "run", "-detach", job_file(tmp_path, "cutoff", DISCONNECT_JOB))
    (original,) = wait_until(lambda: running(server, "cutoff"), what="the alloc to run")
    holder = agent_of(agents, server, original)
    pid = wait_until(lambda: task_pid(holder, original["ID"]), what="the task pid")
    os.kill(holder.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: server.api(f"/v1/allocation/{original['ID']}")["ClientStatus"] == "unknown",
                   timeout=DETECT + 15, what="the alloc to go unknown")
        assert server.api(f"/v1/node/{original['NodeID']}")["Status"] == "disconnected"
        (replacement,) = wait_until(lambda: running(server, "cutoff"), what="a replacement to run")
        assert replacement["NodeID"] != original["NodeID"]
        assert alive(pid)
    finally:
        os.kill(holder.proc.pid, signal.SIGCONT)
    back = wait_until(lambda: (a := server.api(f"/v1/allocation/{original['ID']}"))["ClientStatus"] == "running"
                      and a, timeout=30, what="the original to be running again")
    assert back["DesiredStatus"] == "run"
    wait_until(lambda: server.api(f"/v1/allocation/{replacement['ID']}")["DesiredStatus"] == "stop",
               what="the replacement to be stopped")
    wait_until(lambda: server.api(f"/v1/node/{original['NodeID']}")["Status"] == "ready", what="node ready")
    time.sleep(1.0)  # let any further (wrong) scheduling show up
    assert [a["ID"] for a in running(server, "cutoff")] == [original["ID"]]
    assert len(allocs(server, "cutoff")) == 2  # replaced once, not twice
    assert task_pid(holder, original["ID"]) == pid and alive(pid)
    state = server.api(f"/v1/allocation/{original['ID']}")["TaskStates"]["t"]
    assert state["Restarts"] == 0
    assert [s["Value"] for s in server.api(f"/v1/allocation/{original['ID']}")["AllocStates"]] == ["unknown", "running"]


FAILING_JOB = """
job "flaky" {
  group "g" {
    restart {
      attempts = 1
      interval = "10m"
      delay    = "1s"
      mode     = "fail"
    }
    reschedule {
      attempts       = 2
      interval       = "1h"
      delay          = "5s"
      delay_function = "exponential"
      max_delay      = "1m"
      unlimited      = false
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "exit 3"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


def test_failing_task_restarts_then_reschedules_with_growing_delays_until_the_limit(cluster, tmp_path):
    server, _ = start(cluster, clients=("c1",))
    yurt(server.address, "job", "run", "-detach", job_file(tmp_path, "flaky", FAILING_JOB))

    def three_failed():
        found = allocs(server, "flaky")
        return len(found) == 3 and all(a["ClientStatus"] == "failed" for a in found) and found

    found = wait_until(three_failed, timeout=60, what="three failed allocs")
    chain = sorted(found, key=lambda a: a["CreateIndex"])
    for alloc in chain:
        assert alloc["TaskStates"]["t"]["Restarts"] == 1  # restart first, reschedule after
    assert [a["NextAllocation"] for a in chain] == [chain[1]["ID"], chain[2]["ID"], ""]
    events = chain[2]["RescheduleTracker"]["Events"]
    assert [e["PrevAllocID"] for e in events] == [chain[0]["ID"], chain[1]["ID"]]
    assert [e["Delay"] for e in events] == [5 * 10**9, 10 * 10**9]  # exponential (5s is Nomad's minimum)
    failed_at = [parse_rfc3339_ns(a["TaskStates"]["t"]["FinishedAt"]) for a in chain]
    gaps = [chain[i + 1]["CreateTime"] - failed_at[i] for i in range(2)]
    assert gaps[0] >= 5 * 10**9 - 10**8 and gaps[1] >= 10 * 10**9 - 10**8
    time.sleep(1.0)
    evals = server.api("/v1/job/flaky/evaluations")
    assert not [e for e in evals if e["Status"] in ("pending", "blocked")]  # the attempt limit holds
    assert len(allocs(server, "flaky")) == 3


DRAIN_JOB = f"""
job "moving" {{
  group "g" {{
    count = 3
    migrate {{
      max_parallel     = 1
      health_check     = "task_states"
      min_healthy_time = "3s"
    }}
{LOOP_TASK}  }}
}}
"""


class MigrationWatch(threading.Thread):
    """Polls the job's allocs and records the most allocs ever migrating at once: marked
    for migration while their replacement is missing or not yet running."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address, self.peak, self.samples = address, 0, 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                found = httpx.get(f"{self.address}/v1/job/moving/allocations", timeout=5).json()
            except httpx.HTTPError:
                continue
            by_id = {a["ID"]: a for a in found}
            flying = 0
            for alloc in found:
                if not (alloc.get("DesiredTransition") or {}).get("Migrate"):
                    continue
                nxt = by_id.get(alloc.get("NextAllocation") or "")
                if nxt is None or nxt["ClientStatus"] != "running" or not self._healthy(nxt):
                    flying += 1
            self.peak, self.samples = max(self.peak, flying), self.samples + 1
            time.sleep(0.05)

    @staticmethod
    def _healthy(alloc: dict) -> bool:
        """Running for min_healthy_time (3 s) by the task's own start time, less a margin: the
        drainer (which counts from when the server saw it running) marks the next alloc later
        than this, and each migration stays in flight long enough for the poll to see it."""
        started = [parse_rfc3339_ns(st["StartedAt"]) for st in (alloc.get("TaskStates") or {}).values()
                   if st.get("StartedAt")]
        return bool(started) and time.time_ns() - max(started) >= 2_700_000_000


def test_drain_with_max_parallel_one_moves_allocs_one_at_a_time(cluster, tmp_path):
    server, _ = start(cluster, clients=("c1",))
    yurt(server.address, "job", "run", "-detach", job_file(tmp_path, "moving", DRAIN_JOB))
    originals = wait_until(lambda: len(found := running(server, "moving")) == 3 and found, what="3 allocs running")
    cluster("c2", "client", servers=[f"127.0.0.1:{server.port}"]).start()
    nodes = wait_until(lambda: len(found := ready_nodes(server)) == 2 and found, what="second client")
    time.sleep(3.0)  # the originals have been running for min_healthy_time
    watch = MigrationWatch(server.address)
    watch.start()
    try:
        out = subprocess.run([*YURT, "node", "drain", "-enable", "-yes", "-deadline", "2m", nodes["c1"]],
                             capture_output=True, text=True, timeout=90, env=_env(server.address), check=False)
    finally:
        watch.done.set()
        watch.join(5)
    assert out.returncode == 0, out.stderr
    assert 1 <= watch.peak <= 1 and watch.samples > 10
    # the drain is complete once the originals stopped; the last replacement may still be starting
    moved = wait_until(lambda: len(found := running(server, "moving")) == 3 and found, what="3 replacements")
    assert {a["NodeID"] for a in moved} == {nodes["c2"]}
    for alloc in originals:
        assert f'Alloc "{alloc["ID"]}" marked for migration' in out.stdout
    assert f"Drain complete for node {nodes['c1']}" in out.stdout
    assert f'All allocations on node "{nodes["c1"]}" have stopped' in out.stdout
    node = server.api(f"/v1/node/{nodes['c1']}")
    assert node["DrainStrategy"] is None and node["SchedulingEligibility"] == "ineligible"
    assert node["LastDrain"]["Status"] == "complete"


def _env(address: str) -> dict:
    return dict(os.environ, NOMAD_ADDR=address)


STOP_JOB = f"""
job "selfstop" {{
  group "g" {{
    disconnect {{
      stop_on_client_after = "3s"
    }}
{LOOP_TASK}  }}
}}
"""


def test_client_without_servers_stops_allocs_after_stop_on_client_after(cluster, tmp_path):
    server, (client,) = start(cluster, clients=("c1",))
    yurt(server.address, "job", "run", "-detach", job_file(tmp_path, "selfstop", STOP_JOB))
    (alloc,) = wait_until(lambda: running(server, "selfstop"), what="the alloc to run")
    pid = wait_until(lambda: task_pid(client, alloc["ID"]), what="the task pid")
    server.kill(signal.SIGKILL)  # the client is cut off from every server
    time.sleep(1.5)
    assert alive(pid)  # not before stop_on_client_after
    wait_until(lambda: not alive(pid), timeout=20, what="the client to stop the task")
