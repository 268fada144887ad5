"""JSON jobspecs (API names) parse to the same Job as the equivalent HCL."""

import json

from yurt.jobspec import parse
from yurt.structs import SECOND, to_wire
from yurt.structs.defaults import canonicalize

HCL = '''
job "web" {
  datacenters = ["dc1"]
  type        = "service"
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  group "web" {
    count = 2
    network {
      port "http" {}
      port "ssh" { static = 2222 }
    }
    restart { attempts = 4 }
    task "server" {
      driver = "raw_exec"
      config {
        command = "python3"
        args    = ["-m", "http.server", "${NOMAD_PORT_http}"]
      }
      env { GREETING = "hi" }
      resources {
        cpu    = 200
        memory = 64
      }
      kill_timeout = "10s"
    }
  }
}
'''

API_JOB = {
    "ID": "web",
    "Datacenters": ["dc1"],
    "Type": "service",
    "Constraints": [{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}],
    "TaskGroups": [{
        "Name": "web",
        "Count": 2,
        "Networks": [{
            "DynamicPorts": [{"Label": "http"}],
            "ReservedPorts": [{"Label": "ssh", "Value": 2222}],
        }],
        "RestartPolicy": {"Attempts": 4},
        "Tasks": [{
            "Name": "server",
            "Driver": "raw_exec",
            "Config": {"command": "python3", "args": ["-m", "http.server", "${NOMAD_PORT_http}"]},
            "Env": {"GREETING": "hi"},
            "Resources": {"CPU": 200, "MemoryMB": 64},
            "KillTimeout": 10 * SECOND,
        }],
    }],
}


def test_wrapped_json_equals_hcl():
    from_hcl = parse(HCL, "web.nomad.hcl")
    from_json = parse(json.dumps({"Job": API_JOB}), "web.json")
    assert to_wire(from_json) == to_wire(from_hcl)


def test_bare_json_equals_wrapped_json():
    assert parse(json.dumps(API_JOB)) == parse(json.dumps({"Job": API_JOB}))


def test_canonicalized_forms_are_equal():
    assert canonicalize(parse(HCL)) == canonicalize(parse(json.dumps(API_JOB)))


def test_wire_round_trip_of_parsed_job():
    job = canonicalize(parse(HCL))
    assert parse(json.dumps({"Job": to_wire(job)})) == job


def test_nulls_in_api_json_mean_unset():
    data = {"Job": {"ID": "n", "Region": None, "Type": None, "Priority": None, "Datacenters": None,
                    "TaskGroups": [{"Name": "g", "Count": None, "RestartPolicy": None,
                                    "Tasks": [{"Name": "t", "Driver": "raw_exec", "KillTimeout": None,
                                               "Config": {"keep": None},
                                               "Resources": {"CPU": None, "MemoryMB": 128}}]}]}}
    job = parse(json.dumps(data))
    assert (job.region, job.type, job.priority, job.task_groups[0].count) == ("global", "service", 50, 1)
    task = job.task_groups[0].tasks[0]
    assert task.config == {"keep": None}
    assert (task.resources.cpu, task.resources.memory_mb) == (100, 128)
    canonical = canonicalize(job)
    assert canonical.datacenters == ["*"] and canonical.task_groups[0].tasks[0].kill_timeout == 5 * SECOND
