"""Next launch times of periodic jobs (pure; fixed clock)."""

import pytest
from cli_fakes import EVAL_ID, JOB_ID, NOW, job, job_stub, summary

from yurt.cli.cron_next import next_launch
from yurt.cli.format import format_datetime, next_launch_text


@pytest.mark.parametrize("spec, zone, expected", [
    ("*/15 * * * *", "UTC", "2023-11-14T22:15:00Z"),
    ("0 9 * * mon-fri", "Europe/Berlin", "2023-11-15T09:00:00+01:00"),
    ("@monthly", "UTC", "2023-12-01T00:00:00Z"),
    ("0 0 13 * fri", "UTC", "2023-11-17T00:00:00Z"),
    ("30 0 0 1 1 * 2025", "UTC", "2025-01-01T00:00:30Z"),
    ("0 0 29 2 *", "UTC", "2024-02-29T00:00:00Z"),
])
def test_next_launch(spec, zone, expected):
    assert format_datetime(next_launch({"Spec": spec, "TimeZone": zone}, NOW)) == expected


def test_unsupported_specs_have_no_launch_and_disabled_ones_still_do():
    assert next_launch({"Spec": "0 0 32 * *"}, NOW) is None
    assert next_launch({}, NOW) is None
    # as Nomad's api.PeriodicConfig.Next: `Enabled` is not looked at
    assert format_datetime(next_launch({"Spec": "* * * * *", "Enabled": False}, NOW)) == "2023-11-14T22:14:00Z"


def test_earliest_of_several_specs_and_text():
    periodic = {"Specs": ["0 0 * * *", "*/5 * * * *"], "TimeZone": "UTC"}
    assert next_launch_text(periodic, NOW) == "2023-11-14T22:15:00Z (1m40s from now)"


def test_job_status_shows_next_periodic_launch(fake, run_cli):
    periodic = {"Enabled": True, "Spec": "*/15 * * * *", "SpecType": "cron", "ProhibitOverlap": False,
                "TimeZone": "UTC"}
    fake.on("GET", "/v1/jobs", lambda r: [job_stub(Type="batch", Periodic=True)] if r.params.get("prefix") == JOB_ID else [])
    fake.on("GET", f"/v1/job/{JOB_ID}", job(Type="batch", Periodic=periodic))
    fake.on("GET", f"/v1/job/{JOB_ID}/summary", summary())
    res = run_cli("job", "status", JOB_ID)
    assert res.code == 0, res.err
    assert "Periodic             = true\n" in res.out
    assert "Next Periodic Launch = 2023-11-14T22:15:00Z (1m40s from now)\n" in res.out
    assert res.out.endswith("\nNo instances of periodic job found\n")


def test_run_periodic_job_prints_next_launch(fake, run_cli, tmp_path):
    path = tmp_path / "p.nomad.hcl"
    path.write_text('job "example" {\n  type = "batch"\n  periodic {\n    crons = ["*/15 * * * *"]\n  }\n'
                    '  group "g" {\n    task "t" {\n      driver = "docker"\n    }\n  }\n}\n')
    fake.on("PUT", "/v1/jobs", {"EvalID": "", "Warnings": ""})
    res = run_cli("job", "run", str(path))
    assert res.code == 0, res.err
    assert res.out == ("Job registration successful\n"
                       "Approximate next launch time: 2023-11-14T22:15:00Z (1m40s from now)\n")
    assert EVAL_ID not in res.out
