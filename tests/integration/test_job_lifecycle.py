"""Issue 6, job lifecycle acceptance on one real dev agent (raw_exec tasks): a periodic job
fires on its schedule while prohibit_overlap holds; a dispatch with meta and payload reaches
the task; a revert brings back the old version's task."""

import base64
import re
import textwrap
import time

import pytest

from .agents import AgentProcess, kill_task_processes, wait_until, yurt

pytestmark = pytest.mark.timeout(120)

PERIODIC_JOB = """
job "tick" {
  type = "batch"
  periodic {
    crons            = ["*/2 * * * * * *"]
    prohibit_overlap = true
  }
  group "tick" {
    task "tick" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo tick; sleep 4"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""

PARAM_JOB = """
job "proc" {
  type = "batch"
  parameterized {
    payload       = "optional"
    meta_required = ["who"]
  }
  group "proc" {
    task "proc" {
      driver = "raw_exec"
      dispatch_payload {
        file = "input.txt"
      }
      config {
        command = "/bin/sh"
        args    = ["-c", "echo meta=$NOMAD_META_who; cat $NOMAD_TASK_DIR/input.txt || echo no-payload-file"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""

SERVICE_JOB = """
job "rev" {
  group "rev" {
    task "rev" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo running-%s; sleep 300"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lifecycle")
    agent = AgentProcess(workdir, "dev", "dev").start()
    yield agent
    agent.kill()
    kill_task_processes(workdir)


def write(dev: AgentProcess, name: str, text: str) -> str:
    path = dev.data_dir.parent / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def children(dev: AgentProcess, parent: str, kind: str) -> list[dict]:
    return [j for j in dev.api("/v1/jobs", prefix=f"{parent}/{kind}-") if j["ParentID"] == parent]


def job_allocs(dev: AgentProcess, job_id: str) -> list[dict]:
    return dev.api(f"/v1/job/{job_id.replace('/', '%2F')}/allocations")


def test_periodic_job_fires_and_prohibit_overlap_holds(dev):
    out = yurt(dev.address, "job", "run", write(dev, "tick.nomad.hcl", PERIODIC_JOB)).stdout
    assert "Job registration successful" in out and "Approximate next launch time" in out
    most_live, deadline = 0, time.monotonic() + 16
    while time.monotonic() < deadline:  # children every 2 s, each running ~4 s
        live = [c for c in children(dev, "tick", "periodic") if c["Status"] != "dead"]
        most_live = max(most_live, len(live))
        time.sleep(0.25)
    launched = children(dev, "tick", "periodic")
    assert len(launched) >= 2, launched  # it fires on its schedule...
    assert most_live == 1  # ...but never while an earlier child still runs
    assert len(launched) <= 5  # without prohibit_overlap there would be about 8
    done = [c for c in launched if c["Status"] == "dead"]
    assert done and all(a["ClientStatus"] == "complete" for c in done for a in job_allocs(dev, c["ID"]))

    status = yurt(dev.address, "job", "status", "tick").stdout
    assert re.search(r"^Periodic\s+= true$", status, re.MULTILINE) and "Next Periodic Launch" in status
    assert "Previously Launched Jobs" in status and launched[0]["ID"] in status

    child_status = yurt(dev.address, "job", "status", launched[0]["ID"]).stdout
    assert re.search(rf"^ID\s+= {re.escape(launched[0]['ID'])}$", child_status, re.MULTILINE), child_status

    forced = yurt(dev.address, "job", "periodic", "force", "-detach", "tick").stdout
    assert forced.startswith("Force periodic successful\nEvaluation ID: ")
    yurt(dev.address, "job", "stop", "-detach", "tick")


def dispatched_child(dev: AgentProcess, out: str) -> str:
    match = re.search(r"^Dispatched Job ID = (proc/dispatch-\d+-[0-9a-f]{8})$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def finished_alloc(dev: AgentProcess, child: str) -> dict:
    return wait_until(lambda: next((a for a in job_allocs(dev, child) if a["ClientStatus"] == "complete"), None),
                      timeout=30, what=f"{child} to complete")


def test_dispatch_meta_reaches_the_task_and_payload_reaches_the_client(dev, tmp_path):
    yurt(dev.address, "job", "run", write(dev, "proc.nomad.hcl", PARAM_JOB))
    payload = tmp_path / "payload.txt"
    payload.write_text("payload-from-cli\n")
    out = yurt(dev.address, "job", "dispatch", "-meta", "who=yurt", "proc", str(payload)).stdout
    child = dispatched_child(dev, out)
    assert re.search(r"^Evaluation ID\s+= [0-9a-f]{8}$", out, re.MULTILINE) and "finished with status" in out
    alloc = finished_alloc(dev, child)
    logs = yurt(dev.address, "alloc", "logs", alloc["ID"]).stdout
    assert "meta=yurt" in logs
    full = dev.api(f"/v1/allocation/{alloc['ID']}")
    assert base64.b64decode(full["Job"]["Payload"]) == b"payload-from-cli\n"  # in the alloc's job
    assert full["Job"]["Meta"]["who"] == "yurt" and full["Job"]["ParentID"] == "proc"

    again = yurt(dev.address, "job", "dispatch", "-detach", "-meta", "who=x", "-idempotency-token", "t1",
                 "-id-prefix-template", "batch7", "proc").stdout
    first = again.splitlines()[0].split(" = ")[1]
    assert first.startswith("proc/dispatch-batch7-")
    repeat = yurt(dev.address, "job", "dispatch", "-detach", "-meta", "who=x", "-idempotency-token", "t1",
                  "proc").stdout
    assert repeat.splitlines() == [f"Dispatched Job ID = {first}"]  # no second child, no eval

    bad = yurt(dev.address, "job", "dispatch", "proc", check=False)
    assert bad.returncode == 1 and "Dispatch did not provide required meta keys: [who]" in bad.stderr


def test_dispatch_payload_file_is_written_for_the_task(dev, tmp_path):
    yurt(dev.address, "job", "run", write(dev, "proc.nomad.hcl", PARAM_JOB))
    payload = tmp_path / "payload.txt"
    payload.write_text("payload-in-task\n")
    out = yurt(dev.address, "job", "dispatch", "-meta", "who=file", "proc", str(payload)).stdout
    alloc = finished_alloc(dev, dispatched_child(dev, out))
    logs = yurt(dev.address, "alloc", "logs", alloc["ID"]).stdout
    assert "payload-in-task" in logs and "no-payload-file" not in logs


def running_output(dev: AgentProcess, job_id: str, version: int) -> str:
    def found():
        for a in job_allocs(dev, job_id):
            if a["ClientStatus"] == "running" and a["JobVersion"] == version:
                logs = yurt(dev.address, "alloc", "logs", a["ID"], check=False).stdout
                return logs if "running-" in logs else None
        return None

    return wait_until(found, timeout=30, what=f"{job_id} version {version} to run")


def test_revert_brings_back_the_old_versions_task(dev):
    yurt(dev.address, "job", "run", "-detach", write(dev, "rev1.nomad.hcl", SERVICE_JOB % "one"))
    assert "running-one" in running_output(dev, "rev", 0)
    yurt(dev.address, "job", "run", "-detach", write(dev, "rev2.nomad.hcl", SERVICE_JOB % "two"))
    assert "running-two" in running_output(dev, "rev", 1)

    out = yurt(dev.address, "job", "revert", "rev", "0").stdout
    assert re.search(r'Evaluation "[0-9a-f]{8}" finished with status "complete"', out), out
    assert "running-one" in running_output(dev, "rev", 2)
    live = [a for a in job_allocs(dev, "rev") if a["ClientStatus"] in ("running", "pending")]
    assert [a["JobVersion"] for a in live] == [2]
    history = yurt(dev.address, "job", "history", "rev").stdout
    assert re.search(r"^Version\s+= 2$", history, re.MULTILINE)

    # scale, then restart in place: the same allocs, each task restarted once
    out = yurt(dev.address, "job", "scale", "rev", "2").stdout
    assert re.search(r'Evaluation "[0-9a-f]{8}" finished with status "complete"', out), out
    def two_running():
        found = [a for a in job_allocs(dev, "rev") if a["ClientStatus"] == "running"]
        return found if len(found) == 2 else None

    running = wait_until(two_running, timeout=30, what="2 allocs")
    events = yurt(dev.address, "job", "scaling-events", "rev").stdout
    assert events.splitlines()[1].split()[:3] == ["rev", "2", "1"], events
    out = yurt(dev.address, "job", "restart", "-yes", "rev").stdout
    assert "Restarting 2 allocations" in out and out.rstrip().endswith("Job restarted successfully!"), out
    for a in running:
        state = dev.api(f"/v1/allocation/{a['ID']}")["TaskStates"]["rev"]
        assert state["Restarts"] == 1 or "Restart Signaled" in [e["Type"] for e in state["Events"]], state

    # -reschedule: each alloc stopped and replaced by a running one
    out = yurt(dev.address, "job", "restart", "-yes", "-reschedule", "rev").stdout
    assert out.count("waiting for") == 2 and "Job restarted successfully!" in out, out
    allocs = {a["ID"]: a for a in job_allocs(dev, "rev")}
    for old in running:
        assert allocs[old["ID"]]["DesiredStatus"] == "stop"
        assert allocs[allocs[old["ID"]]["NextAllocation"]]["ClientStatus"] == "running"
    yurt(dev.address, "job", "stop", "-detach", "rev")
