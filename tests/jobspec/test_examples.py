"""Every file in examples/ and the `job init` templates parse and validate."""

from pathlib import Path

import pytest

from yurt.jobspec import example_job, parse, parse_file, validate
from yurt.structs.defaults import canonicalize

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.nomad.hcl"))


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"hello.nomad.hcl", "batch.nomad.hcl", "web.nomad.hcl", "countdown.nomad.hcl"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_and_validates(path):
    job = parse_file(str(path))
    assert job.id and job.task_groups
    assert validate(canonicalize(job)) == []


def test_example_shapes():
    by_name = {p.name: parse_file(str(p)) for p in EXAMPLES}
    hello, batch = by_name["hello.nomad.hcl"], by_name["batch.nomad.hcl"]
    web, countdown = by_name["web.nomad.hcl"], by_name["countdown.nomad.hcl"]
    assert (hello.type, hello.task_groups[0].count, hello.task_groups[0].tasks[0].driver) == (
        "service", 1, "raw_exec")
    assert batch.type == "batch"
    assert web.task_groups[0].count == 2
    assert web.task_groups[0].networks[0].dynamic_ports[0].label == "http"
    assert "${NOMAD_PORT_http}" in web.task_groups[0].tasks[0].config["args"]
    assert (countdown.type, countdown.task_groups[0].count) == ("batch", 3)


def test_countdown_variable_can_be_overridden():
    path = next(p for p in EXAMPLES if p.name == "countdown.nomad.hcl")
    job = parse_file(str(path), variables={"from": "7"})
    assert "seq 7 -1 1" in job.task_groups[0].tasks[0].config["args"][1]


@pytest.mark.parametrize("short", [False, True])
def test_job_init_template(short):
    text = example_job(short=short)
    job = parse(text, "example.nomad.hcl")
    assert (job.id, [g.name for g in job.task_groups]) == ("example", ["cache"])
    task = job.task_groups[0].tasks[0]
    assert (task.name, task.driver, task.resources.cpu, task.resources.memory_mb) == ("redis", "docker", 500, 256)
    assert job.task_groups[0].networks[0].dynamic_ports[0].to == 6379
    assert validate(canonicalize(job)) == []
    assert (len(text.splitlines()) > 100) is not short
