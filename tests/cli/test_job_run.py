"""`job run`: local parse, register body, the eval monitor sequence and exit codes."""

import json

from cli_fakes import ALLOC_ID, EVAL_ID, JOB_ID, NODE_ID, alloc_stub, evaluation, sequence

JOBSPEC = """
job "example" {
  group "cache" {
    count = VAR_COUNT
    task "redis" {
      driver = "docker"
      config {
        image = "redis:7"
      }
    }
  }
}
"""


def write_job(tmp_path, count="1"):
    path = tmp_path / "example.nomad.hcl"
    path.write_text(JOBSPEC.replace("VAR_COUNT", count))
    return str(path)


def serve_register(fake, evals, allocs):
    fake.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID, "EvalCreateIndex": 10, "JobModifyIndex": 10, "Warnings": ""})
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", sequence(*evals))
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", sequence(*allocs))


def test_run_monitors_eval_pending_to_complete(fake, run_cli, tmp_path):
    serve_register(fake, [evaluation(status="pending"), evaluation(status="complete")],
                   [[], [alloc_stub(ClientStatus="pending", CreateIndex=11)]])
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 0, res.err
    t = "2023-11-14T22:13:20Z"
    assert res.out.splitlines() == [
        f'==> {t}: Monitoring evaluation "{EVAL_ID[:8]}"',
        f'    {t}: Evaluation triggered by job "{JOB_ID}"',
        f'    {t}: Allocation "{ALLOC_ID[:8]}" created: node "{NODE_ID[:8]}", group "cache"',
        f'    {t}: Evaluation status changed: "pending" -> "complete"',
        f'==> {t}: Evaluation "{EVAL_ID[:8]}" finished with status "complete"',
    ]
    body = fake.calls("PUT", "/v1/jobs")[0].body
    assert body["Job"]["ID"] == JOB_ID
    assert body["Job"]["TaskGroups"][0]["Tasks"][0]["Config"] == {"image": "redis:7"}
    assert "EnforceIndex" not in body


def test_run_exit_code_2_on_placement_failure(fake, run_cli, tmp_path):
    failed = evaluation(status="complete", BlockedEval="b10c4ed0-0000-0000-0000-000000000000", FailedTGAllocs={
        "cache": {"NodesEvaluated": 3, "NodesFiltered": 3, "CoalescedFailures": 2,
                  "ConstraintFiltered": {"missing drivers": 3}}})
    serve_register(fake, [failed], [[]])
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 2
    t = "2023-11-14T22:13:20Z"
    assert (f'==> {t}: Evaluation "{EVAL_ID[:8]}" finished with status "complete" '
            "but failed to place all allocations:") in res.out
    assert f'    {t}: Task Group "cache" (failed to place 3 allocations):' in res.out
    assert '    * Constraint "missing drivers": 3 nodes excluded by filter' in res.out
    assert f'    {t}: Evaluation "b10c4ed0" waiting for additional capacity to place remainder' in res.out


def test_run_detach(fake, run_cli, tmp_path):
    serve_register(fake, [evaluation()], [[]])
    res = run_cli("job", "run", "-detach", write_job(tmp_path))
    assert (res.code, res.out) == (0, f"Job registration successful\nEvaluation ID: {EVAL_ID}\n")
    assert not fake.calls("GET", f"/v1/evaluation/{EVAL_ID}")


def test_run_alias_and_check_index(fake, run_cli, tmp_path):
    serve_register(fake, [evaluation()], [[]])
    res = run_cli("run", "-detach", "-check-index", "5", write_job(tmp_path))
    assert res.code == 0, res.err
    body = fake.calls("PUT", "/v1/jobs")[0].body
    assert (body["EnforceIndex"], body["JobModifyIndex"]) == (True, 5)


def test_run_check_index_conflict(fake, run_cli, tmp_path):
    fake.on("PUT", "/v1/jobs", (400, "Enforcing job modify index 5: job exists with conflicting job modify index: 7"))
    res = run_cli("job", "run", "-check-index=5", write_job(tmp_path))
    assert res.code == 1
    assert res.err.splitlines() == [
        "Enforcing job modify index 5: job exists with conflicting job modify index: 7", "Job not updated"]


def test_run_var_flag_reaches_parser(fake, run_cli, tmp_path):
    path = tmp_path / "v.nomad.hcl"
    path.write_text('variable "n" {\n  type = number\n}\n' + JOBSPEC.replace("VAR_COUNT", "var.n"))
    serve_register(fake, [evaluation()], [[]])
    res = run_cli("job", "run", "-detach", "-var", "n=3", str(path))
    assert res.code == 0, res.err
    assert fake.calls("PUT", "/v1/jobs")[0].body["Job"]["TaskGroups"][0]["Count"] == 3


def test_run_output_prints_register_json_without_submitting(fake, run_cli, tmp_path):
    res = run_cli("job", "run", "-output", write_job(tmp_path))
    assert res.code == 0
    assert res.out.startswith('{\n    "Job": {\n')
    assert json.loads(res.out)["Job"]["ID"] == JOB_ID
    assert not fake.requests


def test_run_parse_error(run_cli, tmp_path):
    path = tmp_path / "bad.nomad.hcl"
    path.write_text('job "x" {\n  group "g" {\n    cuont = 2\n  }\n}\n')
    res = run_cli("job", "run", str(path))
    assert res.code == 1
    assert res.err.startswith(f"Error getting job struct: Error parsing job file from {path}:\nbad.nomad.hcl:3,")


def test_run_missing_file(run_cli, tmp_path):
    res = run_cli("job", "run", str(tmp_path / "nope.hcl"))
    assert res.code == 1
    assert res.err.startswith(f'Error getting job struct: Error getting jobfile from "{tmp_path}/nope.hcl"')


def test_run_submit_error(fake, run_cli, tmp_path):
    fake.on("PUT", "/v1/jobs", (500, "rpc error: no leader"))
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 1
    assert res.err == "Error submitting job: Unexpected response code: 500 (rpc error: no leader)\n"


def test_run_needs_one_argument(run_cli):
    res = run_cli("job", "run")
    assert res.code == 1
    assert res.err.startswith("This command takes one argument: <path>\n")


def test_run_namespace_flag_applies_to_job(fake, run_cli, tmp_path):
    serve_register(fake, [evaluation()], [[]])
    run_cli("job", "run", "-detach", "-namespace", "prod", write_job(tmp_path))
    call = fake.calls("PUT", "/v1/jobs")[0]
    assert call.params["namespace"] == "prod"
    assert call.body["Job"]["Namespace"] == "prod"


def test_monitor_follows_next_eval(fake, run_cli, tmp_path):
    next_id = "9e9e9e9e-0000-0000-0000-000000000000"
    serve_register(fake, [evaluation(NextEval=next_id)], [[]])
    fake.on("GET", f"/v1/evaluation/{next_id}", evaluation(next_id, TriggeredBy="queued-allocs"))
    fake.on("GET", f"/v1/evaluation/{next_id}/allocations", [])
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 0, res.err
    assert f'Monitoring evaluation "{next_id[:8]}"' in res.out
    assert f'Evaluation "{next_id[:8]}" finished with status "complete"' in res.out


def test_monitor_unknown_eval(fake, run_cli, tmp_path):
    fake.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID})
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 1
    assert res.err == f'==> No evaluation with id "{EVAL_ID}" found\n'


def test_monitor_reports_alloc_status_changes(fake, run_cli, tmp_path):
    serve_register(fake, [evaluation(status="pending"), evaluation(status="pending"), evaluation(status="complete")],
                   [[alloc_stub(ClientStatus="pending")], [alloc_stub(ClientStatus="running", ClientDescription="Tasks are running")]])
    res = run_cli("job", "run", write_job(tmp_path))
    assert res.code == 0, res.err
    assert (f'Allocation "{ALLOC_ID[:8]}" status changed: "pending" -> "running" (Tasks are running)') in res.out
