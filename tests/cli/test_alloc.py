"""`alloc status`, `alloc logs`, `alloc stop`: prefix rules, task blocks, log routes."""

from cli_fakes import ALLOC2_ID, ALLOC_ID, EVAL_ID, JOB_ID, alloc, alloc_stub, evaluation, job, task_event, text


def serve_alloc(fake, full=None):
    full = full or alloc()
    fake.on("GET", "/v1/allocations",
            lambda r: [s for s in [alloc_stub()] if s["ID"].startswith(r.params.get("prefix", ""))])
    fake.on("GET", f"/v1/allocation/{ALLOC_ID}", full)


def test_alloc_status_blocks(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/allocation/{ALLOC_ID}/stats", {
        "Tasks": {"redis": {"ResourceUsage": {"CpuStats": {"TotalTicks": 12.7},
                                              "MemoryStats": {"RSS": 52428800, "Measured": ["RSS"]}}}}})
    res = run_cli("alloc", "status", "5a6b")
    assert res.code == 0, res.err
    out = res.out
    assert out.startswith(f"ID                  = {ALLOC_ID}\nEval ID             = {EVAL_ID[:8]}\n")
    assert "Desired Description = <none>\nCreated             = 5m ago\nModified            = 5s ago\n" in out
    assert '\nTask "redis" is "running"\nTask Resources:\n' in out
    assert "CPU         Memory          Disk     Addresses\n12/100 MHz  50 MiB/300 MiB  300 MiB  \n" in out
    assert "Task Events:\nStarted At     = 2023-11-14T22:08:25Z\nFinished At    = N/A\n" in out
    assert out.endswith(
        "Recent Events:\n"
        "Time                  Type        Description\n"
        "2023-11-14T22:08:25Z  Started     Task started by client\n"
        "2023-11-14T22:08:21Z  Task Setup  Building Task Directory\n"
        "2023-11-14T22:08:20Z  Received    Task received by client\n")


def test_alloc_status_without_stats_reports_and_continues(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "status", ALLOC_ID)
    assert res.code == 0
    assert res.err.startswith("Couldn't retrieve stats: Unexpected response code: 404")
    assert "100 MHz  300 MiB  300 MiB" in res.out


def test_alloc_status_terminated_event_message(fake, run_cli):
    full = alloc()
    full["TaskStates"]["redis"]["Events"].append(task_event("Terminated", 1, ExitCode=137, Signal=9))
    serve_alloc(fake, full)
    res = run_cli("alloc", "status", ALLOC_ID)
    assert "Terminated  Exit Code: 137, Signal: 9" in res.out


def test_alloc_prefix_needs_two_characters(run_cli):
    res = run_cli("alloc", "status", "5")
    assert (res.code, res.err) == (1, "Identifier must contain at least two characters.\n")


def test_alloc_prefix_is_trimmed_to_even_length(fake, run_cli):
    serve_alloc(fake)
    run_cli("alloc", "status", "5a6")
    assert fake.calls("GET", "/v1/allocations")[0].params["prefix"] == "5a"


def test_alloc_prefix_ambiguous(fake, run_cli):
    fake.on("GET", "/v1/allocations", [alloc_stub(), alloc_stub(ALLOC2_ID)])
    res = run_cli("alloc", "status", "5a6b")
    assert res.code == 0  # Nomad prints the table and succeeds here
    assert res.out.startswith("Prefix matched multiple allocations\n\nID        Node ID")
    assert ALLOC2_ID[:8] in res.out


def test_alloc_prefix_none(fake, run_cli):
    fake.on("GET", "/v1/allocations", [])
    res = run_cli("alloc", "status", "dead")
    assert (res.code, res.err) == (1, 'No allocation(s) with prefix or id "dead" found\n')


def test_alloc_status_short(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "status", "-short", ALLOC_ID)
    assert "\nTasks\nName   State    Last Event  Time                  Lifecycle\n" \
           "redis  running  Started     2023-11-14T22:08:25Z  main\n" in res.out


def test_alloc_status_template(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "status", "-t", '{{.ID}} {{index .TaskStates "redis" | printf "%v" | len}}', ALLOC_ID)
    assert res.out.startswith(ALLOC_ID + " ")


def test_logs_single_task(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/fs/logs/{ALLOC_ID}", text("line 1\nline 2\n"))
    res = run_cli("alloc", "logs", ALLOC_ID)
    assert (res.code, res.out) == (0, "line 1\nline 2\n")
    params = fake.calls("GET", f"/v1/client/fs/logs/{ALLOC_ID}")[0].params
    assert params == {"task": "redis", "type": "stdout", "plain": "true", "origin": "start", "offset": "0"}


def test_logs_stderr_tail_n(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/fs/logs/{ALLOC_ID}", text("a\nb\nc\nd\n"))
    res = run_cli("logs", "-stderr", "-tail", "-n", "2", ALLOC_ID, "redis")
    assert res.out == "c\nd\n"
    params = fake.calls("GET", f"/v1/client/fs/logs/{ALLOC_ID}")[0].params
    assert (params["type"], params["origin"], params["offset"]) == ("stderr", "end", "240")


def test_logs_needs_task_when_group_has_several(fake, run_cli):
    two = job()
    two["TaskGroups"][0]["Tasks"].append({"Name": "sidecar", "Driver": "docker"})
    serve_alloc(fake, alloc(Job=two))
    res = run_cli("alloc", "logs", ALLOC_ID)
    assert res.code == 1
    assert res.err == (f'Failed to validate task: Allocation "{ALLOC_ID[:8]}" is running the following tasks:\n'
                       "  * redis\n  * sidecar\n\nPlease specify the task.\n")


def test_logs_unknown_task_flag(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "logs", "-task", "nope", ALLOC_ID)
    assert res.code == 1
    assert res.err.startswith("Failed to validate task: Could not find task named: nope, found:\nredis")


def test_logs_needs_alloc(run_cli):
    res = run_cli("alloc", "logs")
    assert (res.code, res.err.splitlines()[0]) == (1, "An allocation ID is required")


def test_alloc_stop_monitors(fake, run_cli):
    serve_alloc(fake)
    fake.on("POST", f"/v1/allocation/{ALLOC_ID}/stop", {"EvalID": EVAL_ID, "Index": 40})
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(TriggeredBy="alloc-stop"))
    fake.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    res = run_cli("alloc", "stop", ALLOC_ID)
    assert res.code == 0, res.err
    assert f'Evaluation triggered by job "{JOB_ID}"' in res.out
    res = run_cli("alloc", "stop", "-detach", ALLOC_ID)
    assert res.out == EVAL_ID + "\n"


def test_logs_follow_streams_until_the_server_closes(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/fs/logs/{ALLOC_ID}", text("one\ntwo\n"))
    res = run_cli("alloc", "logs", "-f", "-stdout", ALLOC_ID)
    assert (res.code, res.out) == (0, "one\ntwo\n")
    assert fake.calls("GET", f"/v1/client/fs/logs/{ALLOC_ID}")[0].params["follow"] == "true"


def test_logs_api_error(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/fs/logs/{ALLOC_ID}", (500, "task not started"))
    res = run_cli("alloc", "logs", ALLOC_ID)
    assert res.code == 1
    assert res.err == ("Failed to read stdout file: error reading file: "
                       "Unexpected response code: 500 (task not started)\n")


def test_alloc_status_reschedule_eligibility(fake, run_cli):
    follow = "f0110000-0000-0000-0000-000000000000"
    serve_alloc(fake, alloc(ClientStatus="failed", FollowupEvalID=follow))
    fake.on("GET", f"/v1/evaluation/{follow}", evaluation(follow, status="pending", WaitUntil="2023-11-14T22:14:20Z"))
    res = run_cli("alloc", "status", ALLOC_ID)
    assert "Reschedule Eligibility = 1m from now\n" in res.out


def test_alloc_status_stats_flag(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", f"/v1/client/allocation/{ALLOC_ID}/stats", {"Tasks": {"redis": {"ResourceUsage": {
        "CpuStats": {"TotalTicks": 12.7, "Percent": 3.14159, "UserMode": 1.5, "Measured": ["Percent", "User Mode"]},
        "MemoryStats": {"RSS": 52428800, "Cache": 1048576, "Measured": ["RSS", "Cache"]}}}}})
    res = run_cli("alloc", "status", "-stats", ALLOC_ID)
    assert "\nMemory Stats\nCache    RSS\n1.0 MiB  50 MiB\n\nCPU Stats\nPercent  User Mode\n3.14%    1.50%\n" in res.out
    assert "Memory Stats" not in run_cli("alloc", "status", ALLOC_ID).out
