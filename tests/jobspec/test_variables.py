"""Variables, locals, functions and runtime references."""

import pytest

from yurt.jobspec import parse

JOB = '''
variable "count" {
  type    = number
  default = 1
}
variable "image" {
  type    = string
  default = "redis"
}
variable "tags" {
  type    = list(string)
  default = ["a"]
}
locals {
  full_image = "${var.image}:${local.version}"
  version    = "7"
  names      = [for t in var.tags : upper(t)]
}
job "v" {
  group "g" {
    count = var.count
    task "t" {
      driver = "docker"
      config {
        image = local.full_image
        tags  = local.names
        extra = format("%s-%d", var.image, var.count + 1)
        joined = join(",", var.tags)
        cond  = var.count > 1 ? "many" : "one"
        kernel = "${attr.kernel.name}"
        mixed = "${var.image} on ${node.unique.name}"
        alloc = NOMAD_ALLOC_ID
      }
    }
  }
}
'''


def config(**kwargs):
    return parse(JOB, "v.nomad.hcl", **kwargs).task_groups[0].tasks[0].config


def test_defaults_locals_and_functions():
    cfg = config(variables={})
    assert cfg["image"] == "redis:7"
    assert cfg["tags"] == ["A"]
    assert cfg["extra"] == "redis-2"
    assert cfg["joined"] == "a"
    assert cfg["cond"] == "one"


def test_runtime_references_pass_through():
    cfg = config(variables={})
    assert cfg["kernel"] == "${attr.kernel.name}"
    assert cfg["mixed"] == "redis on ${node.unique.name}"
    assert cfg["alloc"] == "${NOMAD_ALLOC_ID}"


def test_cli_variables_are_converted_to_the_declared_type():
    job = parse(JOB, variables={"count": "3", "tags": '["x", "y"]'})
    assert job.task_groups[0].count == 3
    assert job.task_groups[0].tasks[0].config["tags"] == ["X", "Y"]
    assert job.task_groups[0].tasks[0].config["cond"] == "many"


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("NOMAD_VAR_image", "nginx")
    assert config()["image"] == "nginx:7"
    assert config(variables={"image": "caddy"})["image"] == "caddy:7"  # -var wins


def test_var_files(tmp_path):
    var_file = tmp_path / "prod.vars.hcl"
    var_file.write_text('image = "postgres"\ncount = 4\n')
    job = parse(JOB, var_files=[str(var_file)])
    assert job.task_groups[0].count == 4
    assert job.task_groups[0].tasks[0].config["image"] == "postgres:7"


def test_file_function_respects_allow_fs(tmp_path):
    (tmp_path / "script.sh").write_text("echo hi\n")
    text = ('job "f" {\n group "g" {\n task "t" {\n driver = "raw_exec"\n'
            ' config { script = file("script.sh") }\n }\n }\n}\n')
    job = parse(text, str(tmp_path / "f.nomad.hcl"))
    assert job.task_groups[0].tasks[0].config["script"] == "echo hi\n"
    from yurt.jobspec import JobspecError
    with pytest.raises(JobspecError, match='no function named "file"'):
        parse(text, str(tmp_path / "f.nomad.hcl"), allow_fs=False)


def test_local_cycle_is_reported():
    from yurt.jobspec import JobspecError
    with pytest.raises(JobspecError, match="Cycle in local values"):
        parse('locals {\n a = local.b\n b = local.a\n}\njob "x" {}\n')


def test_variable_validation_rules():
    from yurt.jobspec import JobspecError
    text = ('variable "count" {\n  type = number\n  default = 1\n  validation {\n'
            '    condition     = var.count > 0 && var.count < 10\n'
            '    error_message = "The count must be between 1 and 9."\n  }\n}\n'
            'job "v" {\n  group "g" {\n    count = var.count\n    task "t" { driver = "raw_exec" }\n  }\n}\n')
    assert parse(text, variables={"count": "4"}).task_groups[0].count == 4
    with pytest.raises(JobspecError) as info:
        parse(text, "v.nomad.hcl", variables={"count": "12"})
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.line == 5 and "The count must be between 1 and 9." in diagnostic.message


def test_malformed_cli_value_for_number_variable():
    from yurt.jobspec import JobspecError
    with pytest.raises(JobspecError, match="Invalid value for variable"):
        parse(JOB, variables={"count": "lots"})
