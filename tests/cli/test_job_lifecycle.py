"""`job dispatch`, `job periodic force`, `job revert`, `job scale`, `job start` and
`job restart` against a fake API: requests sent and Nomad's output."""

import base64

from cli_fakes import (
    ALLOC2_ID,
    ALLOC_ID,
    EVAL_ID,
    JOB_ID,
    alloc_stub,
    evaluation,
    job,
    job_stub,
)

from yurt.cli.job_restart import JobRestartCommand

CHILD = f"{JOB_ID}/dispatch-1700000000-0a1b2c3d"


def serve_job(fake, **over):
    stub_over = {k: v for k, v in over.items() if k in ("Periodic", "ParameterizedJob", "ParentID", "Type")}
    if "Periodic" in stub_over:
        stub_over["Periodic"] = bool(stub_over["Periodic"])
    if "ParameterizedJob" in stub_over:
        stub_over["ParameterizedJob"] = bool(stub_over["ParameterizedJob"])
    fake.on("GET", "/v1/jobs", lambda r: [job_stub(**stub_over)] if JOB_ID.startswith(r.params.get("prefix", ""))
            else [])
    fake.on("GET", f"/v1/job/{JOB_ID}", job(**over))


def serve_eval(fake, **over):
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(**over))
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])


# -- dispatch ------------------------------------------------------------------
def test_dispatch_sends_meta_payload_token_and_monitors(fake, run_cli, tmp_path):
    serve_job(fake, Type="batch", ParameterizedJob={"Payload": "optional"})
    fake.on("PUT", f"/v1/job/{JOB_ID}/dispatch", {"DispatchedJobID": CHILD, "EvalID": EVAL_ID, "Index": 30})
    serve_eval(fake, JobID=CHILD)
    payload = tmp_path / "input.txt"
    payload.write_bytes(b"hello\n")
    res = run_cli("job", "dispatch", "-meta", "input=a.txt", "-meta", "mode=x=y", "-idempotency-token", "T1",
                  "-id-prefix-template", "nightly", JOB_ID, str(payload))
    assert res.code == 0, res.err
    assert res.out.startswith(f"Dispatched Job ID = {CHILD}\nEvaluation ID     = 8e7c3b4a\n\n==> ")
    assert 'Evaluation "8e7c3b4a" finished with status "complete"' in res.out
    call = fake.calls("PUT", f"/v1/job/{JOB_ID}/dispatch")[0]
    assert call.params["idempotency_token"] == "T1"
    assert call.body["Meta"] == {"input": "a.txt", "mode": "x=y"}
    assert base64.b64decode(call.body["Payload"]) == b"hello\n"
    assert call.body["IdPrefixTemplate"] == "nightly"


def test_dispatch_detach_stdin_and_no_eval(fake, run_cli):
    serve_job(fake, Type="batch", ParameterizedJob={"Payload": "optional"})
    fake.on("PUT", f"/v1/job/{JOB_ID}/dispatch", {"DispatchedJobID": CHILD, "EvalID": EVAL_ID})
    res = run_cli("job", "dispatch", "-detach", "-verbose", JOB_ID, "-", stdin="from stdin")
    assert res.code == 0, res.err
    assert res.out == f"Dispatched Job ID = {CHILD}\nEvaluation ID     = {EVAL_ID}\n"
    body = fake.calls("PUT", f"/v1/job/{JOB_ID}/dispatch")[0].body
    assert base64.b64decode(body["Payload"]) == b"from stdin"
    fake.on("PUT", f"/v1/job/{JOB_ID}/dispatch", {"DispatchedJobID": CHILD, "EvalID": ""})
    res = run_cli("job", "dispatch", JOB_ID)
    assert res.out == f"Dispatched Job ID = {CHILD}\n"


def test_dispatch_errors(fake, run_cli):
    serve_job(fake)  # not parameterized
    res = run_cli("job", "dispatch", JOB_ID)
    assert res.code == 1 and res.err == f'No parameterized job(s) with prefix or ID "{JOB_ID}" found\n'
    serve_job(fake, Type="batch", ParameterizedJob={"Payload": "required"})
    res = run_cli("job", "dispatch", "-meta", "novalue", JOB_ID)
    assert res.code == 1 and res.err == "Error parsing meta value: novalue\n"
    fake.on("PUT", f"/v1/job/{JOB_ID}/dispatch", (400, "Payload is not provided but required by parameterized job"))
    res = run_cli("job", "dispatch", JOB_ID)
    assert res.code == 1
    assert res.err.startswith("Failed to dispatch job: ") and "required by parameterized job" in res.err
    res = run_cli("job", "dispatch", JOB_ID, "/no/such/file")
    assert res.code == 1 and res.err.startswith("Error reading input data: ")
    res = run_cli("job", "dispatch")
    assert res.code == 1 and "This command takes one or two argument" in res.err


# -- periodic force -------------------------------------------------------------
def test_periodic_force(fake, run_cli):
    serve_job(fake, Type="batch", Periodic={"Enabled": True, "Spec": "* * * * *"})
    fake.on("PUT", f"/v1/job/{JOB_ID}/periodic/force", {"EvalID": EVAL_ID, "EvalCreateIndex": 40})
    res = run_cli("job", "periodic", "force", "-detach", "exa")
    assert res.code == 0, res.err
    assert res.out == f"Force periodic successful\nEvaluation ID: {EVAL_ID}\n"
    serve_eval(fake, TriggeredBy="periodic-job")
    res = run_cli("job", "periodic", "force", JOB_ID)
    assert res.code == 0 and "Monitoring evaluation" in res.out
    serve_job(fake)
    res = run_cli("job", "periodic", "force", JOB_ID)
    assert res.code == 1 and res.err == f'No periodic job(s) with prefix or ID "{JOB_ID}" found\n'


# -- revert, scale, start ------------------------------------------------------------
def test_revert_by_version_and_tag(fake, run_cli):
    serve_job(fake)
    fake.on("PUT", f"/v1/job/{JOB_ID}/revert", {"EvalID": EVAL_ID})
    res = run_cli("job", "revert", "-detach", JOB_ID, "1")
    assert res.code == 0 and res.out == f"Evaluation ID: {EVAL_ID}\n"
    assert fake.calls("PUT", f"/v1/job/{JOB_ID}/revert")[0].body == {"JobID": JOB_ID, "JobVersion": 1}
    fake.on("GET", f"/v1/job/{JOB_ID}/versions", {"Versions": [
        job(Version=2), job(Version=1, VersionTag={"Name": "golden"})]})
    run_cli("job", "revert", "-detach", JOB_ID, "golden")
    assert fake.calls("PUT", f"/v1/job/{JOB_ID}/revert")[-1].body["JobVersion"] == 1
    res = run_cli("job", "revert", JOB_ID, "silver")
    assert res.code == 1 and "version tag silver not found" in res.err
    fake.on("PUT", f"/v1/job/{JOB_ID}/revert", (400, "can't revert to current version"))
    res = run_cli("job", "revert", JOB_ID, "0")
    assert res.code == 1 and res.err.startswith("Error retrieving job versions: ")


def test_scale_picks_the_only_group_and_monitors(fake, run_cli):
    serve_job(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/scale", {"TaskGroups": {"cache": {"Desired": 1}}})
    fake.on("PUT", f"/v1/job/{JOB_ID}/scale", {"EvalID": EVAL_ID, "Warnings": ""})
    serve_eval(fake, TriggeredBy="job-scaling")
    res = run_cli("job", "scale", JOB_ID, "3")
    assert res.code == 0, res.err
    body = fake.calls("PUT", f"/v1/job/{JOB_ID}/scale")[0].body
    assert body["Count"] == 3 and body["Target"] == {"Job": JOB_ID, "Group": "cache"}
    assert body["Message"] == "submitted using the Nomad CLI"
    res = run_cli("job", "scale", "-detach", JOB_ID, "cache", "2")
    assert res.out == f"Job scale successful\nEvaluation ID: {EVAL_ID}\n"


def test_scale_errors(fake, run_cli):
    serve_job(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/scale", {"TaskGroups": {"a": {}, "b": {}}})
    assert run_cli("job", "scale", JOB_ID, "2").err == "Group name required\n"
    assert run_cli("job", "scale", JOB_ID, "c", "2").err == "Group c not found within job\n"
    res = run_cli("job", "scale", JOB_ID, "a", "two")
    assert res.code == 1 and res.err.startswith("Failed to convert count string to int")
    res = run_cli("job", "scale", JOB_ID)
    assert res.err == "Command requires at least two arguments and no more than three\n"


def test_start_reregisters_a_stopped_job(fake, run_cli):
    serve_job(fake, Stop=True, Version=3)
    fake.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID})
    res = run_cli("job", "start", "-detach", JOB_ID)
    assert res.code == 0, res.err
    assert res.out == f"Job start successful\nEvaluation ID: {EVAL_ID}\n"
    sent = fake.calls("PUT", "/v1/jobs")[0].body["Job"]
    assert sent["Stop"] is False and sent["ID"] == JOB_ID
    serve_job(fake, Stop=False)
    res = run_cli("start", JOB_ID)
    assert res.code == 1 and res.err == f'Job "{JOB_ID}" has not been stopped\n'


def test_start_periodic_job_prints_next_launch(fake, run_cli):
    periodic = {"Enabled": True, "Spec": "*/15 * * * *", "TimeZone": "UTC"}
    serve_job(fake, Stop=True, Type="batch", Periodic=periodic)
    fake.on("PUT", "/v1/jobs", {"EvalID": ""})
    res = run_cli("job", "start", JOB_ID)
    assert res.out == ("Job start successful\n"
                       "Approximate next launch time: 2023-11-14T22:15:00Z (1m40s from now)\n")


# -- restart --------------------------------------------------------------------
def serve_restart(fake, allocs):
    serve_job(fake)
    fake.on("GET", f"/v1/job/{JOB_ID}/versions", {"Versions": [job()]})
    fake.on("GET", f"/v1/job/{JOB_ID}/allocations", allocs)
    fake.on("GET", f"/v1/job/{JOB_ID}/deployments", [])
    for a in allocs:
        fake.on("PUT", f"/v1/client/allocation/{a['ID']}/restart", {})


def test_restart_in_batches(fake, run_cli):
    allocs = [alloc_stub(ALLOC_ID, CreateIndex=11), alloc_stub(ALLOC2_ID, CreateIndex=12),
              alloc_stub("77777777-0000-0000-0000-000000000000", ClientStatus="complete", DesiredStatus="stop")]
    serve_restart(fake, allocs)
    res = run_cli("job", "restart", "-yes", "-batch-size", "50%", JOB_ID)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith("==> ") and lines[0].endswith(": Restarting 2 allocations")
    assert lines[1].endswith(': Restarting running tasks in allocation "5a6b7c8d" for group "cache"')
    assert lines[2].endswith(': Restarting running tasks in allocation "5a6b9999" for group "cache"')
    assert lines[3].endswith(": Job restart finished") and lines[-1] == "Job restarted successfully!"
    assert len(fake.calls("PUT", f"/v1/client/allocation/{ALLOC_ID}/restart")) == 1
    res = run_cli("job", "restart", "-yes", "-batch-size", "2", "-task", "redis", JOB_ID)
    assert "Restarting 1st batch of 2 allocations" in res.out
    assert 'Restarting task "redis" in allocation "5a6b7c8d"' in res.out
    assert fake.calls("PUT", f"/v1/client/allocation/{ALLOC_ID}/restart")[-1].body == {"TaskName": "redis"}


def test_restart_waits_and_asks_between_batches(fake, run_cli, monkeypatch):
    allocs = [alloc_stub(ALLOC_ID), alloc_stub(ALLOC2_ID)]
    serve_restart(fake, allocs)
    monkeypatch.setattr(JobRestartCommand, "_interactive", lambda self: True)
    res = run_cli("job", "restart", "-batch-wait", "ask", JOB_ID, stdin="n\n")
    assert res.code == 0, res.err
    assert "Proceed with the next batch? [Y/n/<wait duration>]" in res.out
    assert "Job restart canceled" in res.out and "Job restarted successfully" not in res.out
    assert not fake.calls("PUT", f"/v1/client/allocation/{ALLOC2_ID}/restart")
    res = run_cli("job", "restart", "-batch-wait", "ask", JOB_ID, stdin="2s\n")
    assert "Proceeding restarts with new wait time of 2s" in res.out
    assert "Waiting 2s before restarting the next batch" in res.out
    assert len(fake.calls("PUT", f"/v1/client/allocation/{ALLOC2_ID}/restart")) == 1


def test_restart_errors_and_reschedule(fake, run_cli):
    allocs = [alloc_stub(ALLOC_ID), alloc_stub(ALLOC2_ID)]
    serve_restart(fake, allocs)
    fake.on("PUT", f"/v1/client/allocation/{ALLOC_ID}/restart", (500, "task not running"))
    res = run_cli("job", "restart", "-on-error", "fail", JOB_ID)
    assert res.code == 1
    assert "Stopping job restart due to error" in res.out
    assert 'Error restarting allocation "5a6b7c8d"' in res.err and "1 error occurred while restarting job" in res.err
    res = run_cli("job", "restart", JOB_ID)
    assert res.code == 1 and 'Invalid -on-error value "ask"' in res.err
    res = run_cli("job", "restart", "-yes", "-batch-size", "0", JOB_ID)
    assert 'Invalid -batch-size value "0": number value must be greater than zero' in res.err
    res = run_cli("job", "restart", "-yes", "-reschedule", "-task", "x", JOB_ID)
    assert "The -reschedule option cannot be used with -task" in res.err

    new_id = "99999999-1111-2222-3333-444455556666"
    serve_restart(fake, [alloc_stub(ALLOC_ID)])
    fake.on("PUT", f"/v1/allocation/{ALLOC_ID}/stop", {"EvalID": EVAL_ID, "Index": 50})
    fake.on("GET", f"/v1/job/{JOB_ID}/evaluations", [])
    fake.on("GET", f"/v1/allocation/{ALLOC_ID}", alloc_stub(ALLOC_ID, NextAllocation=new_id))
    fake.on("GET", f"/v1/allocation/{new_id}", alloc_stub(new_id, ClientStatus="running"))
    res = run_cli("job", "restart", "-yes", "-reschedule", JOB_ID)
    assert res.code == 0, res.err
    assert 'Rescheduling allocation "5a6b7c8d" for group "cache"' in res.out
    assert 'Allocation "5a6b7c8d" replaced by "99999999", waiting for "99999999" to start running' in res.out
    assert 'Allocation "99999999" is "running"' in res.out


def test_restart_reschedule_reports_placement_failures(fake, run_cli):
    serve_restart(fake, [alloc_stub(ALLOC_ID)])
    fake.on("PUT", f"/v1/allocation/{ALLOC_ID}/stop", {"EvalID": EVAL_ID, "Index": 50})
    fake.on("GET", f"/v1/allocation/{ALLOC_ID}", alloc_stub(ALLOC_ID, ClientStatus="complete"))
    blocked = evaluation(Status="blocked", CreateIndex=55, FailedTGAllocs={"cache": {
        "NodesEvaluated": 1, "NodesExhausted": 1, "DimensionExhausted": {"memory": 1}, "CoalescedFailures": 0}})
    fake.on("GET", f"/v1/job/{JOB_ID}/evaluations", [blocked])
    res = run_cli("job", "restart", "-yes", "-reschedule", JOB_ID)
    assert res.code == 1
    assert 'Evaluation "8e7c3b4a" has placement failures for group "cache"' in res.err


def test_no_allocations_to_restart(fake, run_cli):
    serve_restart(fake, [alloc_stub(ALLOC_ID, ClientStatus="complete", DesiredStatus="stop")])
    res = run_cli("job", "restart", "-yes", JOB_ID)
    assert res.code == 0 and res.out == "No allocations to restart\n"


def test_scaling_events_newest_first(fake, run_cli):
    serve_job(fake)
    t0 = 1_700_000_000 * 10**9
    fake.on("GET", f"/v1/job/{JOB_ID}/scale", {"TaskGroups": {
        "cache": {"Events": [{"Time": t0 - 60 * 10**9, "Count": 3, "PreviousCount": 1, "Message": "up",
                              "Error": False, "EvalID": EVAL_ID}]},
        "web": {"Events": [{"Time": t0, "Count": None, "PreviousCount": 2, "Message": "note", "Error": True,
                            "EvalID": None}]}}})
    res = run_cli("job", "scaling-events", JOB_ID)
    assert res.code == 0, res.err
    assert res.out == ("Task Group  Count   PrevCount  Date\n"
                       "web         <none>  2          2023-11-14T22:13:20Z\n"
                       "cache       3       1          2023-11-14T22:12:20Z\n")
    res = run_cli("job", "scaling-events", "-verbose", JOB_ID)
    assert f"|{EVAL_ID}" not in res.out and EVAL_ID in res.out and "Eval ID" in res.out
    fake.on("GET", f"/v1/job/{JOB_ID}/scale", {"TaskGroups": {"cache": {"Events": None}}})
    assert run_cli("job", "scaling-events", JOB_ID).out == "No events found\n"


def test_dispatch_wait_reports_the_summary_of_the_dead_child(fake, run_cli):
    from cli_fakes import sequence, summary

    serve_job(fake, Type="batch", ParameterizedJob={"Payload": "optional"})
    fake.on("PUT", f"/v1/job/{JOB_ID}/dispatch", {"DispatchedJobID": CHILD, "EvalID": EVAL_ID})
    serve_eval(fake, JobID=CHILD)
    child_path = f"/v1/job/{CHILD}"  # (the fake sees the decoded path)
    fake.on("GET", child_path, sequence(job(CHILD, Status="running"), job(CHILD, Status="dead")))
    fake.on("GET", child_path + "/summary", summary(CHILD, Running=0, Failed=1))
    res = run_cli("job", "dispatch", "-wait", "-verbose", JOB_ID)
    assert res.code == 2, res.err
    assert f'Monitoring allocations for job "{CHILD}"' in res.out
    assert fake.calls("GET", child_path)[0].path == child_path
    assert res.out.endswith("Task Group  Queued  Complete  Failed  Running  Starting  Lost  Unknown\n"
                            "cache       0       0         1       0        0         0     0\n")
