"""`deployment *`, `job promote`, the job status Latest Deployment table and the run
monitor's deployment part, against the fake API."""

from cli_fakes import NOW, sequence

DEP_ID = "d1e2f3a4-0000-4000-8000-000000000001"
OTHER_ID = "d1e2aaaa-0000-4000-8000-000000000002"
EVAL_ID = "e1e2e3e4-0000-4000-8000-000000000003"


def deployment(dep_id=DEP_ID, status="running", desc="Deployment is running", **groups):
    state = {"AutoRevert": False, "AutoPromote": False, "ProgressDeadline": 600_000_000_000,
             "RequireProgressBy": "2023-11-14T22:23:20Z", "Promoted": False, "PlacedCanaries": None,
             "DesiredCanaries": 0, "DesiredTotal": 3, "PlacedAllocs": 2, "HealthyAllocs": 1, "UnhealthyAllocs": 0}
    state.update(groups)
    return {"ID": dep_id, "Namespace": "default", "JobID": "web", "JobVersion": 1, "Status": status,
            "StatusDescription": desc, "TaskGroups": {"web": state}, "CreateIndex": 5, "ModifyIndex": 7}


def test_deployment_list(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment(), deployment(OTHER_ID, "successful", "Deployment completed successfully")])
    res = run_cli("deployment", "list")
    assert res.code == 0
    assert res.out.splitlines() == [
        "ID        Job ID  Job Version  Status      Description",
        "d1e2f3a4  web     1            running     Deployment is running",
        "d1e2aaaa  web     1            successful  Deployment completed successfully",
    ]


def test_deployment_list_empty(fake, run_cli):
    fake.on("GET", "/v1/deployments", [])
    assert run_cli("deployment", "list").out == "No deployments found\n"


def test_deployment_status_table(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    res = run_cli("deployment", "status", "d1e2f3")
    assert res.code == 0, res.err
    assert res.out.splitlines() == [
        "ID          = d1e2f3a4",
        "Job ID      = web",
        "Job Version = 1",
        "Status      = running",
        "Description = Deployment is running",
        "",
        "Deployed",
        "Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline",
        "web         3        2       1        0          2023-11-14T22:23:20Z",
    ]


def test_deployment_status_canary_columns_and_prefix_errors(fake, run_cli):
    d = deployment(DesiredCanaries=1, AutoRevert=True, RequireProgressBy="0001-01-01T00:00:00Z")
    fake.on("GET", "/v1/deployments", [d, deployment(OTHER_ID)])
    res = run_cli("deployment", "status", "d1e2")
    assert res.code == 1 and res.err.startswith("Prefix matched multiple deployments\n\nID")
    res = run_cli("deployment", "status", "ffff")
    assert res.code == 1 and 'Deployment ID "ffff" not found' in res.err
    fake.on("GET", "/v1/deployments", [d])
    out = run_cli("deployment", "status", "d1e2f3").out.splitlines()
    assert out[-2].split() == ["Task", "Group", "Auto", "Revert", "Promoted", "Desired", "Canaries", "Placed",
                               "Healthy", "Unhealthy", "Progress", "Deadline"]
    assert out[-1].split() == ["web", "true", "false", "3", "1", "2", "1", "0", "N/A"]


def test_deployment_promote_groups_and_monitor(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    fake.on("PUT", f"/v1/deployment/promote/{DEP_ID}", {"EvalID": EVAL_ID, "Index": 9})
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", {"ID": EVAL_ID, "Status": "complete", "JobID": "web",
                                                  "DeploymentID": DEP_ID, "CreateIndex": 9})
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    fake.on("GET", f"/v1/deployment/{DEP_ID}", sequence(
        deployment(), deployment(status="successful", desc="Deployment completed successfully",
                                 HealthyAllocs=3, PlacedAllocs=3)))
    res = run_cli("deployment", "promote", "-group", "web", "d1e2f3")
    assert res.code == 0, res.err
    body = fake.calls("PUT", f"/v1/deployment/promote/{DEP_ID}")[0].body
    assert body["Groups"] == ["web"] and body["All"] is False
    assert 'Evaluation within deployment: "d1e2f3a4"' in res.out
    assert '==> 2023-11-14T22:13:20Z: Monitoring deployment "d1e2f3a4"' in res.out
    assert '  \u2713 Deployment "d1e2f3a4" successful' in res.out
    assert "    Description = Deployment completed successfully" in res.out


def test_deployment_promote_error_and_detach(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    fake.on("PUT", f"/v1/deployment/promote/{DEP_ID}", (500, 'Task group "web" has 0/1 healthy allocations'))
    res = run_cli("deployment", "promote", "d1e2f3")
    assert res.code == 1
    assert res.err.strip() == ('Error promoting deployment: Unexpected response code: 500 '
                               '(Task group "web" has 0/1 healthy allocations)')


def test_deployment_fail_reports_revert(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    fake.on("PUT", f"/v1/deployment/fail/{DEP_ID}", {"EvalID": EVAL_ID, "RevertedJobVersion": 0, "Index": 9})
    res = run_cli("deployment", "fail", "-detach", "d1e2f3")
    assert res.code == 0 and res.out == 'Deployment "d1e2f3a4" failed. Auto-reverted to job version 0.\n\n'


def test_deployment_pause_resume_unblock(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    fake.on("PUT", f"/v1/deployment/pause/{DEP_ID}", {"EvalID": "", "Index": 9})
    assert run_cli("deployment", "pause", "d1e2f3").out == 'Deployment "d1e2f3a4" paused\n'
    assert fake.calls("PUT", f"/v1/deployment/pause/{DEP_ID}")[0].body["Pause"] is True
    assert run_cli("deployment", "resume", "d1e2f3").out == 'Deployment "d1e2f3a4" resumed\n'
    assert fake.calls("PUT", f"/v1/deployment/pause/{DEP_ID}")[1].body["Pause"] is False
    fake.on("PUT", f"/v1/deployment/unblock/{DEP_ID}", (500, "can't unblock running deployment"))
    res = run_cli("deployment", "unblock", "d1e2f3")
    assert res.code == 1 and "can't unblock running deployment" in res.err


def test_job_promote_without_deployment(fake, run_cli):
    fake.on("GET", "/v1/jobs", [{"ID": "web", "Namespace": "default"}])
    fake.on("GET", "/v1/job/web/deployment", lambda _r: None)
    res = run_cli("job", "promote", "web")
    assert res.code == 1 and 'Job "web" has no deployment to promote' in res.err


def test_job_promote_promotes_latest(fake, run_cli):
    fake.on("GET", "/v1/jobs", [{"ID": "web", "Namespace": "default"}])
    fake.on("GET", "/v1/job/web/deployment", deployment())
    fake.on("PUT", f"/v1/deployment/promote/{DEP_ID}", {"EvalID": EVAL_ID, "Index": 9})
    res = run_cli("job", "promote", "-detach", "web")
    assert res.code == 0
    assert fake.calls("PUT", f"/v1/deployment/promote/{DEP_ID}")[0].body["All"] is True


def test_monitor_failed_deployment_exits_1(fake, run_cli):
    fake.on("GET", "/v1/deployments", [deployment()])
    fake.on("GET", f"/v1/deployment/{DEP_ID}", deployment(status="failed", desc="Failed due to progress deadline"))
    res = run_cli("deployment", "status", "-monitor", "d1e2f3")
    assert res.code == 1
    assert '  ! Deployment "d1e2f3a4" failed' in res.out and "Failed due to progress deadline" in res.out
    assert "==> 2023-11-14T22:13:20Z: Monitoring deployment" in res.out and NOW


def test_job_status_latest_deployment_section(fake, run_cli):
    from test_job_status import JOB_ID, serve_job

    serve_job(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/deployment", deployment())
    out = run_cli("job", "status", JOB_ID).out
    section = out[out.index("Latest Deployment"):out.index("\nAllocations")]
    assert section.splitlines() == [
        "Latest Deployment",
        "ID          = d1e2f3a4",
        "Status      = running",
        "Description = Deployment is running",
        "",
        "Deployed",
        "Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline",
        "web         3        2       1        0          2023-11-14T22:23:20Z",
    ]


def test_job_deployments(fake, run_cli):
    fake.on("GET", "/v1/jobs", [{"ID": "web", "Namespace": "default"}])
    fake.on("GET", "/v1/job/web/deployments", [deployment()])
    res = run_cli("job", "deployments", "web")
    assert res.out.splitlines()[1].split()[:4] == ["d1e2f3a4", "web", "1", "running"]
    fake.on("GET", "/v1/job/web/deployment", lambda _r: None)
    assert run_cli("job", "deployments", "-latest", "web").out == 'Job "web" has no deployment\n'
    run_cli("job", "deployments", "-all", "web")
    assert fake.calls("GET", "/v1/job/web/deployments")[-1].params.get("all") == "true"
