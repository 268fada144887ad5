"""`job status` against Nomad-shaped responses: list table, detail block, prefix rules."""

from cli_fakes import ALLOC_ID, EVAL_ID, JOB_ID, NODE_ID, alloc_stub, evaluation, job, job_stub, summary


def serve_job(fake, **job_over):
    fake.on("GET", "/v1/jobs", lambda r: [s for s in [job_stub()] if s["ID"].startswith(r.params.get("prefix", ""))])
    fake.on("GET", f"/v1/job/{JOB_ID}", job(**job_over))
    fake.on("GET", f"/v1/job/{JOB_ID}/summary", summary())
    fake.on("GET", f"/v1/job/{JOB_ID}/allocations", [alloc_stub()])
    fake.on("GET", f"/v1/job/{JOB_ID}/evaluations", [evaluation()])
    fake.on("GET", f"/v1/job/{JOB_ID}/deployment", None)


def test_job_list_table(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub(), job_stub("batchy", Type="batch", Priority=70, Status="dead", Stop=True)])
    res = run_cli("job", "status")
    assert res.code == 0, res.err
    assert res.out.splitlines() == [
        "ID       Type     Priority  Status          Submit Date",
        "example  service  50        running         2023-11-14T22:12:20Z",
        "batchy   batch    70        dead (stopped)  2023-11-14T22:12:20Z",
    ]


def test_job_list_empty(fake, run_cli):
    fake.on("GET", "/v1/jobs", [])
    res = run_cli("status")
    assert (res.code, res.out) == (0, "No running jobs\n")


def test_job_list_all_namespaces_adds_column(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub(Namespace="prod")])
    res = run_cli("job", "status", "-namespace=*")
    assert res.out.splitlines()[0].split() == ["ID", "Namespace", "Type", "Priority", "Status", "Submit", "Date"]
    assert "prod" in res.out.splitlines()[1]
    assert fake.requests[0].params["namespace"] == "*"


def test_job_detail(fake, run_cli):
    serve_job(fake)
    res = run_cli("job", "status", "ex")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[:11] == [
        "ID            = example",
        "Name          = example",
        "Submit Date   = 2023-11-14T22:12:20Z",
        "Type          = service",
        "Priority      = 50",
        "Datacenters   = *",
        "Namespace     = default",
        "Node Pool     = default",
        "Status        = running",
        "Periodic      = false",
        "Parameterized = false",
    ]
    text = res.out
    assert "\nSummary\nTask Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\n" \
           "cache       0       0         1        0       0         0     0\n" in text
    assert "\nAllocations\nID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n" in text
    assert f"{ALLOC_ID[:8]}  {NODE_ID[:8]}  cache       0        run      running  5m ago   5s ago" in text
    assert "Evaluations" not in text


def test_job_detail_evals_and_verbose_ids(fake, run_cli):
    serve_job(fake)
    res = run_cli("job", "status", "-evals", "-verbose", JOB_ID)
    assert "\nEvaluations\nID" in res.out
    assert f"{EVAL_ID}  50        job-register  complete  false" in res.out
    assert ALLOC_ID in res.out  # -verbose prints full IDs
    assert "Node Name" in res.out


def test_job_detail_short(fake, run_cli):
    serve_job(fake)
    res = run_cli("job", "status", "-short", JOB_ID)
    assert res.out.splitlines()[-1] == "Parameterized = false"


def test_placement_failure_section(fake, run_cli):
    serve_job(fake)
    failed = evaluation(
        "blocked-eval-0000", status="blocked", CreateIndex=20,
        FailedTGAllocs={"cache": {"NodesEvaluated": 2, "NodesExhausted": 2, "DimensionExhausted": {"memory": 2},
                                  "CoalescedFailures": 1}})
    fake.on("GET", f"/v1/job/{JOB_ID}/evaluations", [evaluation(), failed])
    res = run_cli("job", "status", JOB_ID)
    assert '\nPlacement Failure\nTask Group "cache":\n  * Resources exhausted on 2 nodes\n' \
           '  * Dimension "memory" exhausted on 2 nodes\n' in res.out


def test_job_not_found(fake, run_cli):
    fake.on("GET", "/v1/jobs", [])
    res = run_cli("job", "status", "nope")
    assert res.code == 1
    assert res.err == 'No job(s) with prefix or ID "nope" found\n'


def test_job_prefix_ambiguous_lists_matches(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub("web-a"), job_stub("web-b")])
    res = run_cli("job", "status", "web")
    assert res.code == 1
    assert res.err.startswith('Prefix "web" matched multiple jobs\n\nID     Type     Priority')
    assert "web-a" in res.err and "web-b" in res.err


def test_exact_id_wins_over_longer_matches(fake, run_cli):
    serve_job(fake)
    fake.on("GET", "/v1/jobs", [job_stub(), job_stub("example-2")])
    res = run_cli("job", "status", "-short", JOB_ID)
    assert res.code == 0, res.err
    assert res.out.startswith("ID            = example\n")


def test_job_info_api_error_message(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub()])
    fake.on("GET", f"/v1/job/{JOB_ID}", (404, "job not found"))
    res = run_cli("job", "status", JOB_ID)
    assert res.code == 1
    assert res.err == "Error querying job: Unexpected response code: 404 (job not found)\n"


def test_too_many_args(run_cli):
    res = run_cli("job", "status", "a", "b")
    assert res.code == 1
    assert res.err.splitlines() == ["This command takes either no arguments or one: <job>",
                                    "For additional help try 'yurt job status -help'"]


def test_flags_after_positional_are_arguments(run_cli):
    res = run_cli("job", "status", "example", "-verbose")
    assert res.code == 1
    assert "This command takes either no arguments or one" in res.err


def test_json_output_is_nomads_job_json_shape(fake, run_cli):
    serve_job(fake)
    res = run_cli("job", "status", "-json", JOB_ID)
    assert res.code == 0, res.err
    assert res.out.startswith('[\n    {\n        "Summary": {')
    import json

    data = json.loads(res.out)
    assert data[0]["Allocations"][0]["ID"] == ALLOC_ID
    assert data[0]["LatestDeployment"] is None


def test_template_output(fake, run_cli):
    serve_job(fake)
    res = run_cli("job", "status", "-t", "{{range .}}{{range .Allocations}}{{.ID}} {{.ClientStatus}}{{end}}{{end}}", JOB_ID)
    assert res.out == f"{ALLOC_ID} running\n"


def test_future_rescheduling_attempts(fake, run_cli):
    serve_job(fake)
    follow = "f0110000-0000-0000-0000-000000000000"
    fake.on("GET", f"/v1/job/{JOB_ID}/allocations", [alloc_stub(ClientStatus="failed", FollowupEvalID=follow)])
    fake.on("GET", f"/v1/evaluation/{follow}", evaluation(follow, status="pending", WaitUntil="2023-11-14T22:13:50Z"))
    res = run_cli("job", "status", JOB_ID)
    assert "\nFuture Rescheduling Attempts\nTask Group  Eval ID   Eval Time\ncache       f0110000  30s from now\n" in res.out
    job_with_policy = job()
    job_with_policy["TaskGroups"][0]["ReschedulePolicy"] = {
        "Attempts": 0, "Interval": 0, "Delay": 30 * 10**9, "DelayFunction": "exponential",
        "MaxDelay": 3600 * 10**9, "Unlimited": True}
    fake.on("GET", f"/v1/job/{JOB_ID}", job_with_policy)
    res = run_cli("job", "status", "-verbose", JOB_ID)
    assert "cache       unlimited with exponential delay, max_delay = 1h0m0s  " + follow in res.out
