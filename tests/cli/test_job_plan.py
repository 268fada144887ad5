"""`yurt job plan`: dry-run output, exit codes 0/1/255, -var on the job file."""

JOB = ('variable "n" {\n  type = number\n}\n\njob "web" {\n  group "cache" {\n    count = var.n\n'
       '    task "redis" {\n      driver = "docker"\n    }\n  }\n}\n')

PLAN = {
    "Annotations": {"DesiredTGUpdates": {"cache": {"Place": 2, "Stop": 0, "Ignore": 0}}},
    "FailedTGAllocs": None,
    "JobModifyIndex": 0,
    "Diff": {"Type": "Added", "ID": "web", "Fields": [{"Type": "Added", "Name": "Priority", "Old": "", "New": "50"}],
             "Objects": None,
             "TaskGroups": [{"Type": "Added", "Name": "cache",
                             "Fields": [{"Type": "Added", "Name": "Count", "Old": "", "New": "2"}],
                             "Tasks": [{"Type": "Added", "Name": "redis", "Annotations": ["forces create"],
                                        "Fields": [{"Type": "Added", "Name": "Driver", "Old": "", "New": "docker"}]}]}]},
    "Index": 7,
}


def test_plan_prints_diff_and_dry_run_and_exits_1_when_allocs_change(fake, run_cli, tmp_path):
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    fake.on("PUT", "/v1/job/web/plan", PLAN)
    res = run_cli("job", "plan", "-var", "n=2", str(path))
    assert res.code == 1, res.err
    assert res.out == (
        '+ Job: "web"\n+ Priority: "50"\n+ Task Group: "cache" (2 create)\n  + Count: "2"\n'
        '  + Task: "redis" (forces create)\n    + Driver: "docker"\n\n'
        "Scheduler dry-run:\n- All tasks successfully allocated.\n\n"
        "Job Modify Index: 0\nTo submit the job with version verification run:\n\n"
        f"yurt job run -check-index 0 {path}\n\n"
        "When running the job with the check-index flag, the job will only be run if the\n"
        "job modify index given matches the server-side version. If the index has\n"
        "changed, another user has modified the job and the plan's results are\n"
        "potentially invalid.\n")
    body = fake.calls("PUT", "/v1/job/web/plan")[0].body
    assert body["Diff"] is True and body["Job"]["TaskGroups"][0]["Count"] == 2


def test_plan_without_changes_exits_0(fake, run_cli, tmp_path):
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    fake.on("PUT", "/v1/job/web/plan", dict(PLAN, Diff=None,
                                            Annotations={"DesiredTGUpdates": {"cache": {"Ignore": 2}}}))
    res = run_cli("plan", "-var", "n=2", str(path))
    assert res.code == 0 and res.out.startswith("Scheduler dry-run:")


def test_plan_errors_exit_255(fake, run_cli, tmp_path):
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    res = run_cli("job", "plan", str(path))  # n is unset
    assert res.code == 255 and 'Unset variable "n"' in res.err
    res = run_cli("job", "plan", "-var", "n=1", str(path))  # no plan route on the fake
    assert res.code == 255 and "Error during plan" in res.err
