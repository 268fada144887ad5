"""HCL language features: variable precedence, var files, templates with directives,
splat, try/can, dynamic blocks, HCL-style JSON, and the extra functions."""

import json

import pytest

from yurt.jobspec import JobspecError, ParseOptions, parse, parse_to_dict

VARS = '''
variable "image" {
  default = "from-default"
}
variable "count" {
  type    = number
  default = 1
}
job "p" {
  group "g" {
    count = var.count
    task "t" {
      driver = "docker"
      config {
        image = var.image
      }
    }
  }
}
'''


def image_and_count(**kwargs) -> tuple[str, int]:
    job = parse(VARS, "p.nomad.hcl", **kwargs)
    return job.task_groups[0].tasks[0].config["image"], job.task_groups[0].count


def test_precedence_default_env_file_cli(tmp_path):
    hcl_file, json_file = tmp_path / "a.hcl", tmp_path / "b.json"
    hcl_file.write_text('image = "from-hcl-file"\ncount = 2\n')
    json_file.write_text(json.dumps({"image": "from-json-file"}))
    env = {"NOMAD_VAR_image": "from-env", "NOMAD_VAR_count": "5"}
    assert image_and_count(env={}) == ("from-default", 1)
    assert image_and_count(env=env) == ("from-env", 5)
    assert image_and_count(env=env, var_files=[str(hcl_file)]) == ("from-hcl-file", 2)
    assert image_and_count(env=env, var_files=[str(hcl_file), str(json_file)]) == ("from-json-file", 2)
    assert image_and_count(env=env, var_files=[str(json_file)], variables={"image": "from-cli"}) == ("from-cli", 5)


def test_undeclared_var_file_value_is_an_error_in_strict_mode(tmp_path):
    path = tmp_path / "x.hcl"
    path.write_text('imgae = "typo"\n')
    with pytest.raises(JobspecError, match='A "imgae" variable was assigned a value.*Did you mean "image"'):
        parse(VARS, "p.nomad.hcl", var_files=[str(path)], env={})
    assert parse(VARS, "p.nomad.hcl", var_files=[str(path)], env={}, strict=False).id == "p"


def meta_of(body: str, prelude: str = "") -> dict:
    text = f'{prelude}\njob "m" {{\n  meta {{\n{body}\n  }}\n  group "g" {{\n    task "t" {{\n      driver = "x"\n    }}\n  }}\n}}\n'
    return parse_to_dict(text, "m.nomad.hcl")["Meta"]


def test_string_template_directives_and_strip_markers():
    meta = meta_of('a = "%{ for i, x in ["p", "q"] }${i}=${x} %{ endfor }"\n'
                   'b = "[%{ for x in [1, 2] ~} ${x} %{~ endfor }]"\n'
                   'c = "%{ if false }yes%{ else }no%{ endif }"')
    assert meta == {"a": "0=p 1=q ", "b": "[12]", "c": "no"}


def test_heredoc_directives_keep_runtime_references():
    meta = meta_of('h = <<EOT\n%{ for x in ["a", "b"] ~}\nline ${x} ${NOMAD_TASK_DIR}\n%{ endfor ~}\nEOT')
    assert meta["h"] == "line a ${NOMAD_TASK_DIR}\nline b ${NOMAD_TASK_DIR}\n"


def test_splat_try_can_and_single_interpolation():
    prelude = 'locals {\n  objs = [{ n = "a" }, { n = "b" }]\n}'
    meta = meta_of('s = join(",", local.objs[*].n)\nt = try(local.objs[9].n, "none")\n'
                   'c = can(local.objs[0].n)\nn = "${1 + 1}"', prelude)
    assert meta == {"s": "a,b", "t": "none", "c": "true", "n": "2"}


def test_yaml_and_cidr_functions():
    meta = meta_of('y = yamldecode("a:\\n  - 1\\n  - x: y\\n").a[1].x\n'
                   'e = yamlencode({ k = ["v"] })\nh = cidrhost("192.168.0.0/16", 300)')
    assert meta == {"y": "y", "e": '"k":\n- "v"\n', "h": "192.168.1.44"}


def test_nested_dynamic_blocks():
    text = '''
job "d" {
  group "g" {
    dynamic "task" {
      for_each = { web = ["a", "b"], api = ["c"] }
      labels   = [task.key]
      content {
        driver = "docker"
        dynamic "template" {
          for_each = task.value
          iterator = f
          content {
            data        = "${task.key}/${f.value}"
            destination = "local/${f.key}"
          }
        }
      }
    }
  }
}
'''
    tasks = parse_to_dict(text, "d.nomad.hcl")["TaskGroups"][0]["Tasks"]
    assert [(t["Name"], [x["EmbeddedTmpl"] for x in t["Templates"]]) for t in tasks] == [
        ("web", ["web/a", "web/b"]), ("api", ["api/c"])]


def test_hcl_style_json_with_variables_and_templates():
    text = json.dumps({
        "variable": {"n": {"type": "number", "default": 2}},
        "locals": {"name": "svc-${var.n}"},
        "job": {"j": {"group": {"g": {"count": "${var.n}",
                                      "task": {"t": {"driver": "x", "env": {"NAME": "${local.name}",
                                                                             "HOST": "${attr.unique.hostname}"}}}}}}},
    })
    data = parse_to_dict(text, "j.nomad.json", ParseOptions(env={}))
    group = data["TaskGroups"][0]
    assert group["Count"] == 2
    assert group["Tasks"][0]["Env"] == {"NAME": "svc-2", "HOST": "${attr.unique.hostname}"}


def test_api_json_body_still_parses():
    job = parse(json.dumps({"Job": {"ID": "api", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "x"}]}]}}))
    assert (job.id, job.name, job.task_groups[0].tasks[0].driver) == ("api", "api", "x")


def test_variables_from_text_gives_cli_strings():
    from yurt.jobspec import variables_from_text

    values = variables_from_text('image = "nginx"\ncount = 3\nflag = true\ntags = ["a", "b"]\n')
    assert values == {"image": "nginx", "count": "3", "flag": "true", "tags": '["a", "b"]'}
    assert image_and_count(variables=variables_from_text('count = 7\n'), env={}) == ("from-default", 7)
    with pytest.raises(JobspecError, match="may not be used here"):
        variables_from_text("count = var.x\n")


def test_malformed_json_var_file_is_reported(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"image": ')
    with pytest.raises(JobspecError, match="Invalid var file"):
        parse(VARS, "p.nomad.hcl", var_files=[str(path)], env={})


@pytest.mark.parametrize("env,dcs,count", [("prod", ["p1", "p2"], 20), ("dev", ["d1"], 3), ("other", [], 0)])
def test_lookup_with_object_default_picks_per_environment_values(env, dcs, count):
    text = '''
variable "env" {}
locals {
  envs = { prod = { count = 20, dcs = ["p1", "p2"] }, dev = { count = 3, dcs = ["d1"] } }
  env  = lookup(local.envs, var.env, { count = 0, dcs = [] })
}
job "w" {
  datacenters = local.env.dcs
  group "g" {
    count = local.env.count
    task "t" {
      driver = "docker"
      config {
        args = ["-text", "Hello from ${var.env}"]
      }
    }
  }
}
'''
    data = parse_to_dict(text, "w.hcl", ParseOptions(variables={"env": env}, env={}, allow_fs=False))
    assert (data["Datacenters"], data["TaskGroups"][0]["Count"]) == (dcs, count)
    assert data["TaskGroups"][0]["Tasks"][0]["Config"]["args"] == ["-text", f"Hello from {env}"]


@pytest.mark.parametrize("value", ["plain", "foo-${BAR}", "x-${attr.net.dev-us-east1.ip.0}", '${env["HOME"]}',
                                   '${mixed-index.0[3]["K"].5}', 'spaced ${   root.  field[  "K"].5  }'])
def test_unknown_references_are_kept_exactly(value):
    text = 'job "e" {\n  region = "' + value + '"\n}'
    assert parse_to_dict(text, "e.hcl", ParseOptions(env={}))["Region"] == value


def test_distinct_shorthands_equal_the_operator_form():
    long = ('job "d" {\n  constraint {\n    operator = "distinct_hosts"\n    value = "false"\n  }\n'
            '  constraint {\n    operator = "distinct_property"\n    attribute = "${meta.rack}"\n    value = "2"\n  }\n}')
    short = ('job "d" {\n  constraint {\n    distinct_hosts = false\n  }\n'
             '  constraint {\n    distinct_property = "${meta.rack}"\n    value = "2"\n  }\n}')
    assert parse_to_dict(long, "d.hcl", ParseOptions(env={})) == parse_to_dict(short, "d.hcl", ParseOptions(env={}))
