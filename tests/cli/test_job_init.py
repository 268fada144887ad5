"""`yurt job init [-short] [-connect]` writes example jobs that parse and validate."""

import os

import pytest

from yurt.jobspec import parse, validate
from yurt.structs.defaults import canonicalize


@pytest.mark.parametrize("flags,job_id", [((), "example"), (("-short",), "example"),
                                          (("-connect",), "countdash"), (("-connect", "-short"), "countdash")])
def test_init_writes_a_valid_example(run_cli, tmp_path, flags, job_id):
    path = tmp_path / "job.nomad.hcl"
    res = run_cli("job", "init", *flags, str(path))
    assert (res.code, res.out) == (0, f"Example job file written to {path}\n")
    job = parse(path.read_text(), str(path))
    assert job.id == job_id and validate(canonicalize(job)) == []
    if "-connect" in flags:
        assert job.task_groups[1].services[0]["Connect"]["SidecarService"]["Proxy"]["Upstreams"][0][
            "DestinationName"] == "count-api"


def test_init_refuses_to_overwrite(run_cli, tmp_path):
    path = tmp_path / "job.nomad.hcl"
    path.write_text("x")
    res = run_cli("init", str(path))
    assert res.code == 1 and "already exists" in res.err


def test_init_default_name(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("job", "init", "-short").code == 0
    assert os.path.exists(tmp_path / "example.nomad.hcl")
