"""Issue 2: kill -9 the server or the client agent and start it again; nothing is lost."""

import os
import signal
import textwrap
from pathlib import Path

import pytest

from .agents import wait_until, yurt

pytestmark = pytest.mark.timeout(180)

PID_JOB = textwrap.dedent("""
    job "pid" {
      datacenters = ["*"]
      group "g" {
        task "t" {
          driver = "raw_exec"
          config {
            command = "/bin/sh"
            args    = ["-c", "echo $$ > ${NOMAD_ALLOC_DIR}/data/pid; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
          }
          resources {
            cpu    = 50
            memory = 32
          }
        }
      }
    }
""")


def write_job(tmp_path: Path) -> str:
    path = tmp_path / "pid.nomad.hcl"
    path.write_text(PID_JOB)
    return str(path)


def running_alloc(agent, job_id="pid"):
    allocs = [a for a in agent.api(f"/v1/job/{job_id}/allocations") if a["ClientStatus"] == "running"]
    return allocs[0] if allocs else None


def task_pid(data_dir: Path, alloc_id: str) -> int:
    path = data_dir / "alloc" / alloc_id / "alloc" / "data" / "pid"
    return int(path.read_text().strip())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(")")[1].split()[0] != "Z"


def state_view(agent):
    jobs = {j["ID"]: (j["CreateIndex"], j["ModifyIndex"], j["JobModifyIndex"]) for j in agent.api("/v1/jobs")}
    allocs = {a["ID"]: (a["CreateIndex"], a["DesiredStatus"]) for a in agent.api("/v1/allocations")}
    evals = {e["ID"]: (e["CreateIndex"], e["ModifyIndex"], e["Status"]) for e in agent.api("/v1/evaluations")}
    nodes = {n["ID"]: n["CreateIndex"] for n in agent.api("/v1/nodes")}
    return jobs, allocs, evals, nodes


def test_server_kill_9_and_restart_keeps_every_object_and_index(cluster, tmp_path):
    server = cluster("srv", "server").start()
    client = cluster("c1", "client", servers=[f"127.0.0.1:{server.port}"]).start()
    wait_until(lambda: server.api("/v1/nodes"), what="node registration")
    yurt(server.address, "job", "run", write_job(tmp_path))
    wait_until(lambda: running_alloc(server), what="pid job running")
    yurt(server.address, "job", "run", "-detach", "examples/batch.nomad.hcl")
    batch_id = next(j["ID"] for j in server.api("/v1/jobs") if j["Type"] == "batch")
    wait_until(lambda: server.api(f"/v1/job/{batch_id}")["Status"] == "dead", what="batch job to finish")
    before = wait_until(lambda: settled_view(server), what="state to settle")
    index_before = int(server_index(server))

    server.kill(signal.SIGKILL)
    server.start()
    after = state_view(server)
    assert after == before
    assert int(server_index(server)) >= index_before
    # the client keeps working with the restarted server
    wait_until(lambda: server.api("/v1/nodes")[0]["Status"] == "ready", what="node ready again")
    assert running_alloc(server)["ID"] in before[1]
    client.kill()


def settled_view(agent):
    """The state view, once two reads a moment apart agree (client updates have landed)."""
    import time

    first = state_view(agent)
    time.sleep(0.5)
    return first if state_view(agent) == first else None


def server_index(agent) -> str:
    import httpx

    return httpx.get(agent.address + "/v1/jobs").headers["X-Nomad-Index"]


def test_client_kill_9_and_restart_reattaches_the_same_task_process(cluster, tmp_path):
    server = cluster("srv", "server").start()
    client = cluster("c1", "client", servers=[f"127.0.0.1:{server.port}"]).start()
    wait_until(lambda: server.api("/v1/nodes"), what="node registration")
    yurt(server.address, "job", "run", write_job(tmp_path))
    alloc = wait_until(lambda: running_alloc(server), what="pid job running")
    pid = wait_until(lambda: task_pid(client.data_dir, alloc["ID"]), what="task pid file")
    assert alive(pid)

    client.kill(signal.SIGKILL)
    assert alive(pid), "the task must outlive its client agent"
    client.start()

    def reattached():
        full = server.api(f"/v1/allocation/{alloc['ID']}")
        state = full["TaskStates"]["t"]
        return full["ClientStatus"] == "running" and state["State"] == "running" and full
    full = wait_until(reattached, what="alloc still running after client restart")
    assert task_pid(client.data_dir, alloc["ID"]) == pid and alive(pid)
    assert full["TaskStates"]["t"]["Restarts"] == 0
    assert [e["Type"] for e in full["TaskStates"]["t"]["Events"]].count("Started") == 1

    first = yurt(server.address, "alloc", "logs", alloc["ID"]).stdout
    wait_until(lambda: len(yurt(server.address, "alloc", "logs", alloc["ID"]).stdout) > len(first),
               what="logs to keep growing after the restart")
