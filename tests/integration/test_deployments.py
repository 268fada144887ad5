"""Deployments end to end on one dev agent (raw_exec sleep tasks, min_healthy_time 1s):
a rolling update under max_parallel = 1 replaces the allocs one at a time and ends
successful with the version marked stable; a canary waits for `yurt deployment promote`;
a failing new version with auto_revert rolls back to the stable version."""

import re
import textwrap

import pytest

from .agents import AgentProcess, kill_task_processes, wait_until, yurt

pytestmark = pytest.mark.timeout(90)

JOB = """
job "{name}" {{
  group "web" {{
    count = {count}
    update {{
      max_parallel      = 1
      canary            = {canary}
      auto_revert       = {auto_revert}
      health_check      = "task_states"
      min_healthy_time  = "1s"
      healthy_deadline  = "20s"
      progress_deadline = "40s"
    }}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "web" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "{script}"]
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("deployments")
    agent = AgentProcess(workdir, "dev", "dev").start()
    yield agent
    agent.kill()
    kill_task_processes(workdir)


def write(dev: AgentProcess, name: str, version: str, count=3, canary=0, auto_revert=False, script=None) -> str:
    text = JOB.format(name=name, count=count, canary=canary, auto_revert=str(auto_revert).lower(),
                      script=script or f"echo {version}; sleep 300")
    path = dev.data_dir.parent / f"{name}-{version}.nomad.hcl"
    path.write_text(textwrap.dedent(text))
    return str(path)


def latest(dev, job_id):
    return dev.api(f"/v1/job/{job_id}/deployment")


def wait_status(dev, job_id, version, status, timeout=40):
    def done():
        found = [d for d in dev.api(f"/v1/job/{job_id}/deployments") if d["JobVersion"] == version]
        return found[0] if found and found[0]["Status"] == status else None

    return wait_until(done, timeout=timeout, interval=0.2, what=f"{job_id} v{version} deployment {status}")


def live(dev, job_id):
    return [a for a in dev.api(f"/v1/job/{job_id}/allocations") if a["DesiredStatus"] == "run"]


def test_rolling_update_one_at_a_time(dev):
    yurt(dev.address, "job", "run", "-detach", write(dev, "roll", "v0"))
    wait_status(dev, "roll", 0, "successful")
    out = yurt(dev.address, "job", "run", write(dev, "roll", "v1")).stdout
    assert re.search(r'Evaluation within deployment: "[0-9a-f]{8}"', out), out
    assert re.search(r'Monitoring deployment "[0-9a-f]{8}"', out), out
    assert re.search(r'Deployment "[0-9a-f]{8}" successful', out), out
    assert "Deployment completed successfully" in out and "Deployed" in out, out
    d = latest(dev, "roll")
    assert d["JobVersion"] == 1 and d["TaskGroups"]["web"]["HealthyAllocs"] == 3
    new = [a for a in live(dev, "roll") if a["JobVersion"] == 1]
    assert len(new) == 3
    # each replacement came from its own evaluation: one at a time
    assert len({a["EvalID"] for a in new}) == 3
    assert dev.api("/v1/job/roll")["Stable"] is True
    status = yurt(dev.address, "job", "status", "roll").stdout
    assert "Latest Deployment" in status and "successful" in status, status
    assert re.search(r"^Task Group\s+Desired\s+Placed\s+Healthy\s+Unhealthy\s+Progress Deadline$", status, re.MULTILINE), status


def test_canary_waits_for_promotion(dev):
    yurt(dev.address, "job", "run", "-detach", write(dev, "canary", "v0", canary=1))
    wait_status(dev, "canary", 0, "successful")
    yurt(dev.address, "job", "run", "-detach", write(dev, "canary", "v1", canary=1))

    def canary_healthy():
        d = latest(dev, "canary")
        return d if d["JobVersion"] == 1 and d["TaskGroups"]["web"]["HealthyAllocs"] == 1 else None

    d = wait_until(canary_healthy, timeout=30, interval=0.2, what="a healthy canary")
    assert d["StatusDescription"] == "Deployment is running but requires manual promotion"
    assert sorted(a["JobVersion"] for a in live(dev, "canary")) == [0, 0, 0, 1]
    status = yurt(dev.address, "deployment", "status", d["ID"][:8]).stdout
    assert re.search(r"^web\s+false\s+3\s+1\s+1\s+1\s+0\s+", status, re.MULTILINE), status
    out = yurt(dev.address, "deployment", "promote", d["ID"][:8]).stdout
    assert re.search(r'Deployment "[0-9a-f]{8}" successful', out), out
    assert sorted(a["JobVersion"] for a in live(dev, "canary")) == [1, 1, 1]
    assert latest(dev, "canary")["TaskGroups"]["web"]["Promoted"] is True


def test_failed_version_auto_reverts_to_stable(dev):
    yurt(dev.address, "job", "run", "-detach", write(dev, "revert", "v0", count=2, auto_revert=True))
    wait_status(dev, "revert", 0, "successful")
    bad = write(dev, "revert", "v1", count=2, auto_revert=True, script="echo broken; exit 1")
    yurt(dev.address, "job", "run", "-detach", bad)
    failed = wait_status(dev, "revert", 1, "failed")
    assert failed["StatusDescription"] == "Failed due to unhealthy allocations - rolling back to job version 0"
    wait_status(dev, "revert", 2, "successful")
    job = dev.api("/v1/job/revert")
    assert job["Version"] == 2 and job["Stable"] is True
    assert "sleep 300" in job["TaskGroups"][0]["Tasks"][0]["Config"]["args"][1]
    versions = sorted(a["JobVersion"] for a in live(dev, "revert"))
    assert versions == [0, 2] or versions == [2, 2], versions
