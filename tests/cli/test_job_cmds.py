"""`job inspect`, `job history`, `job stop`, `job init`, `job validate`."""

import json

from cli_fakes import EVAL_ID, JOB_ID, evaluation, job, job_stub


def serve_lookup(fake, *stubs):
    stubs = stubs or (job_stub(),)
    fake.on("GET", "/v1/jobs", lambda r: [s for s in stubs if s["ID"].startswith(r.params.get("prefix", ""))])
    fake.on("GET", f"/v1/job/{JOB_ID}", job())


def test_inspect_prints_job_wrapper_with_4_space_indent(fake, run_cli):
    serve_lookup(fake)
    res = run_cli("job", "inspect", JOB_ID)
    assert res.code == 0, res.err
    assert res.out.startswith('{\n    "Job": {\n        "Region": "global",\n')
    assert json.loads(res.out)["Job"]["ID"] == JOB_ID


def test_inspect_version_and_template(fake, run_cli):
    serve_lookup(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/versions",
            {"Versions": [job(Version=1, Priority=70), job(Version=0)], "Diffs": None, "Index": 9})
    res = run_cli("inspect", "-version", "1", "-t", "{{.Version}} {{.Priority}}", JOB_ID)
    assert res.out == "1 70\n"
    res = run_cli("job", "inspect", "-version", "4", JOB_ID)
    assert (res.code, res.err) == (1, 'Error inspecting job: job "example" with version 4 couldn\'t be found\n')


def test_history(fake, run_cli):
    serve_lookup(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/versions", {"Versions": [job(Version=1, Stable=True), job(Version=0)]})
    res = run_cli("job", "history", JOB_ID)
    assert res.out == ("Version     = 1\nStable      = true\nSubmit Date = 2023-11-14T22:12:20Z\n\n"
                       "Version     = 0\nStable      = false\nSubmit Date = 2023-11-14T22:12:20Z\n")


def test_history_diff(fake, run_cli):
    serve_lookup(fake)
    diff = {"Type": "Edited", "ID": JOB_ID, "Fields": [
        {"Type": "Edited", "Name": "Priority", "Old": "50", "New": "70", "Annotations": None}],
        "Objects": None, "TaskGroups": None}
    fake.on("GET", f"/v1/job/{JOB_ID}/versions", {"Versions": [job(Version=1), job(Version=0)], "Diffs": [diff]})
    res = run_cli("job", "history", "-p", JOB_ID)
    assert 'Diff        = \n+/- Job: "example"\n+/- Priority: "50" => "70"\n' in res.out
    assert fake.calls("GET", f"/v1/job/{JOB_ID}/versions")[0].params["diffs"] == "true"


def test_stop_monitors(fake, run_cli):
    serve_lookup(fake)
    fake.on("DELETE", f"/v1/job/{JOB_ID}", {"EvalID": EVAL_ID, "EvalCreateIndex": 20, "JobModifyIndex": 20})
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(TriggeredBy="job-deregister"))
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    res = run_cli("job", "stop", "-purge", JOB_ID)
    assert res.code == 0, res.err
    assert "finished with status \"complete\"" in res.out
    assert fake.calls("DELETE", f"/v1/job/{JOB_ID}")[0].params["purge"] == "true"


def test_stop_by_prefix_asks_for_confirmation(fake, run_cli):
    serve_lookup(fake)
    fake.on("DELETE", f"/v1/job/{JOB_ID}", {"EvalID": EVAL_ID})
    res = run_cli("stop", "exa", stdin="n\n")
    assert res.code == 0
    assert res.out == 'Are you sure you want to stop job "example"? [y/N] Cancelling job stop\n'
    assert not fake.calls("DELETE", f"/v1/job/{JOB_ID}")
    res = run_cli("stop", "-detach", "exa", stdin="y\n")
    assert res.out.endswith(EVAL_ID + "\n")
    res = run_cli("stop", "-detach", "-yes", "exa")
    assert res.out == EVAL_ID + "\n"


def test_stop_errors(fake, run_cli):
    serve_lookup(fake)
    fake.on("DELETE", f"/v1/job/{JOB_ID}", (500, "boom"))
    res = run_cli("job", "stop", JOB_ID)
    assert (res.code, res.err) == (1, "Error deregistering job with id example err: Unexpected response code: 500 (boom)\n")
    assert run_cli("job", "stop").err.startswith("This command takes at least one argument: <job>\n")


def test_init_writes_example_and_refuses_overwrite(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_cli("job", "init")
    assert (res.code, res.out) == (0, "Example job file written to example.nomad.hcl\n")
    assert 'job "example"' in (tmp_path / "example.nomad.hcl").read_text()
    res = run_cli("init")
    assert (res.code, res.err) == (1, "Job 'example.nomad.hcl' already exists\n")
    res = run_cli("job", "init", "-short", "short.hcl")
    assert res.code == 0
    assert len((tmp_path / "short.hcl").read_text()) < len((tmp_path / "example.nomad.hcl").read_text())


def test_validate_via_server(fake, run_cli, tmp_path):
    path = tmp_path / "job.hcl"
    path.write_text('job "example" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n    }\n  }\n}\n')
    fake.on("PUT", "/v1/validate/job", {"DriverConfigValidated": True, "ValidationErrors": None,
                                         "Error": "", "Warnings": ""})
    res = run_cli("job", "validate", str(path))
    assert (res.code, res.out) == (0, "Job validation successful\n")
    fake.on("PUT", "/v1/validate/job", {"DriverConfigValidated": True, "Error": "1 error occurred:\n\t* bad\n\n"})
    res = run_cli("validate", str(path))
    assert res.code == 1
    assert res.err == "Job validation errors:\n1 error occurred:\n\t* bad\n\n\n"


def test_validate_locally_when_no_server(run_cli, tmp_path):
    path = tmp_path / "job.hcl"
    path.write_text('job "example" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n    }\n  }\n}\n')
    res = run_cli("job", "validate", str(path))
    assert res.out.startswith("Driver configuration not validated since connection to Nomad agent couldn't be established.\n")
    assert (res.code, res.out.splitlines()[-1]) == (0, "Job validation successful")
    path.write_text(path.read_text().replace('group "g" {', 'group "g" {\n    count = -1'))
    res = run_cli("job", "validate", str(path))
    assert res.code == 1
    assert res.err.startswith("Job validation errors:\n1 error occurred:\n\t* ")
    assert "count" in res.err
