"""Issue 2, steps 1-5: a dev agent runs Nomad jobspecs end to end behind the CLI."""

import json
import re

import httpx
import pytest

from .agents import REPO, wait_until, yurt

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def dev(cluster):
    return cluster("dev", "dev").start()


def running_allocs(agent, job_id):
    allocs = agent.api(f"/v1/job/{job_id}/allocations")
    return [a for a in allocs if a["ClientStatus"] == "running"]


def test_job_run_monitors_the_evaluation_and_read_commands_work(dev):
    out = yurt(dev.address, "job", "run", "examples/hello.nomad.hcl").stdout
    assert re.search(r'Monitoring evaluation "[0-9a-f]{8}"', out), out
    assert 'Evaluation triggered by job "hello"' in out
    assert re.search(r'Allocation "[0-9a-f]{8}" created: node "[0-9a-f]{8}", group "', out), out
    assert 'Evaluation status changed: "pending" -> "complete"' in out
    assert re.search(r'Evaluation "[0-9a-f]{8}" finished with status "complete"', out), out

    allocs = wait_until(lambda: running_allocs(dev, "hello"), what="hello to run")
    alloc_id = allocs[0]["ID"]

    status = yurt(dev.address, "job", "status", "hello").stdout
    assert re.search(r"^ID\s+= hello$", status, re.M), status
    assert "Allocations" in status and alloc_id[:8] in status and "running" in status

    listing = yurt(dev.address, "job", "status").stdout
    assert listing.splitlines()[0].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]

    alloc_status = yurt(dev.address, "alloc", "status", alloc_id[:6]).stdout
    assert re.search(rf"^ID\s+= {alloc_id}$", alloc_status, re.M), alloc_status
    assert "Started" in alloc_status and "Task received by client" in alloc_status

    logs = wait_until(lambda: yurt(dev.address, "alloc", "logs", alloc_id[:8]).stdout, what="log output")
    assert "hello" in logs.lower()

    nodes = yurt(dev.address, "node", "status").stdout
    assert "ready" in nodes and "eligible" in nodes

    eval_id = dev.api("/v1/job/hello/evaluations")[0]["ID"]
    ev = yurt(dev.address, "eval", "status", eval_id[:8]).stdout
    assert re.search(r"^Status\s+= complete$", ev, re.M), ev

    assert "hello" in yurt(dev.address, "status").stdout
    members = yurt(dev.address, "server", "members").stdout
    assert "alive" in members and "true" in members

    inspect = json.loads(yurt(dev.address, "job", "inspect", "hello").stdout)
    assert inspect["Job"]["ID"] == "hello" and inspect["Job"]["TaskGroups"][0]["Tasks"]

    history = yurt(dev.address, "job", "history", "hello").stdout
    assert "Version" in history and "0" in history

    assert re.match(r"yurt v\d+\.\d+\.\d+", yurt(dev.address, "version").stdout)

    as_json = json.loads(yurt(dev.address, "alloc", "status", "-json", alloc_id).stdout)
    assert as_json["ID"] == alloc_id
    templated = yurt(dev.address, "alloc", "status", "-t", "{{.ClientStatus}} {{.JobID}}", alloc_id).stdout
    assert templated.strip() == "running hello"

    stop = yurt(dev.address, "job", "stop", "hello").stdout
    assert 'finished with status "complete"' in stop
    wait_until(lambda: not running_allocs(dev, "hello"), what="hello to stop")
    assert dev.api("/v1/job/hello")["Stop"] is True

    yurt(dev.address, "job", "stop", "-purge", "hello")
    gone = yurt(dev.address, "job", "status", "hello", check=False)
    assert gone.returncode == 1 and "No job(s) with prefix or ID" in (gone.stdout + gone.stderr)


def test_detach_prints_the_eval_id(dev):
    out = yurt(dev.address, "job", "run", "-detach", "examples/batch.nomad.hcl").stdout
    match = re.search(r"Evaluation ID: ([0-9a-f-]{36})", out)
    assert match, out
    assert dev.api(f"/v1/evaluation/{match.group(1)}")["JobID"]


def test_batch_job_completes(dev):
    yurt(dev.address, "job", "run", "examples/batch.nomad.hcl")
    job_id = dev.api("/v1/jobs")[0]["ID"]
    wait_until(lambda: dev.api(f"/v1/job/{job_id}")["Status"] == "dead", what="batch job to finish")
    allocs = dev.api(f"/v1/job/{job_id}/allocations")
    assert allocs and all(a["ClientStatus"] == "complete" for a in allocs)


def test_job_init_writes_a_runnable_example(dev, tmp_path):
    out = yurt(dev.address, "job", "init", cwd=tmp_path).stdout
    assert "Example job file written to example.nomad.hcl" in out
    assert (tmp_path / "example.nomad.hcl").exists()
    again = yurt(dev.address, "job", "init", cwd=tmp_path, check=False)
    assert again.returncode == 1
    valid = yurt(dev.address, "job", "validate", str(tmp_path / "example.nomad.hcl"), check=False)
    assert "Job validation successful" in valid.stdout, valid.stdout + valid.stderr


def test_global_flags_and_environment(dev):
    bad = "http://127.0.0.1:1"
    assert yurt(bad, "job", "status", check=False).returncode == 1
    ok = yurt(bad, "-address", dev.address, "job", "status")
    assert ok.returncode == 0
    yurt(dev.address, "job", "run", "-detach", "examples/hello.nomad.hcl")
    other_ns = yurt(dev.address, "job", "status", env={"NOMAD_NAMESPACE": "other"}).stdout
    assert "hello" not in other_ns
    all_ns = yurt(dev.address, "-namespace", "*", "job", "status").stdout
    assert "hello" in all_ns


def test_malformed_jobspec_names_file_and_line(dev, tmp_path):
    bad = tmp_path / "bad.nomad.hcl"
    bad.write_text('job "bad" {\n  group "g" {\n    cuont = 2\n  }\n}\n')
    result = yurt(dev.address, "job", "run", str(bad), check=False)
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert f"{bad.name}:3" in text and "cuont" in text, text
    assert dev.api("/v1/jobs") == []


def test_unplaceable_job_is_blocked_and_status_says_why(dev, tmp_path):
    job = tmp_path / "win.nomad.hcl"
    job.write_text((REPO / "examples/hello.nomad.hcl").read_text().replace(
        'job "hello" {', 'job "win" {\n  constraint {\n    attribute = "${attr.kernel.name}"\n    value = "windows"\n  }', 1))
    result = yurt(dev.address, "job", "run", str(job), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    evals = dev.api("/v1/job/win/evaluations")
    assert any(e["Status"] == "blocked" for e in evals)
    status = yurt(dev.address, "job", "status", "win").stdout
    assert "Placement Failure" in status and "windows" in status, status


def test_unknown_ids_are_404_with_nomads_text(dev):
    for path, text in (("/v1/job/nope", "job not found"), ("/v1/allocation/0000", "alloc not found"),
                       ("/v1/evaluation/0000", "eval not found"), ("/v1/node/0000", "node not found")):
        resp = httpx.get(dev.address + path)
        assert resp.status_code == 404 and text in resp.text, (path, resp.status_code, resp.text)
    result = yurt(dev.address, "alloc", "status", "deadbeef", check=False)
    assert result.returncode == 1 and "No allocation(s) with prefix or id" in result.stdout + result.stderr
