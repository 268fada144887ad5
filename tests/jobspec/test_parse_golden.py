"""Golden tests: HCL jobspecs -> the JSON (API) fields Nomad produces for them."""

from yurt.jobspec import parse
from yurt.structs import HOUR, MINUTE, SECOND, to_wire

FULL_JOB = '''
job "web" {
  region      = "eu"
  namespace   = "apps"
  type        = "service"
  priority    = 70
  all_at_once = true
  datacenters = ["dc1", "dc2"]
  node_pool   = "edge"
  meta { owner = "team-a" }

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  constraint { distinct_hosts = true }
  constraint { distinct_property = "${meta.rack}" }
  constraint {
    attribute = "${attr.os.version}"
    version   = ">= 20.04"
  }
  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
    weight    = 80
  }
  spread {
    attribute = "${node.datacenter}"
    target "dc1" { percent = 60 }
    target "dc2" { percent = 40 }
  }

  group "frontend" {
    count          = 3
    shutdown_delay = "6s"
    meta = { tier = "front" }

    network {
      mode = "bridge"
      port "http" { to = 8080 }
      port "admin" {
        static       = 9000
        host_network = "private"
      }
    }

    restart {
      attempts = 5
      delay    = "10s"
      mode     = "delay"
    }
    reschedule {
      delay          = "1m"
      delay_function = "constant"
      unlimited      = false
    }
    ephemeral_disk {
      size   = 500
      sticky = true
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"
      tags     = ["a", "b"]
      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver         = "docker"
      user           = "nobody"
      kill_timeout   = "1m30s"
      kill_signal    = "SIGINT"
      leader         = true
      shutdown_delay = "2s"

      config {
        image = "nginx:1.25"
        ports = ["http"]
        args  = ["--port", "${NOMAD_PORT_http}", "${env["HOME"]}"]
      }
      env {
        ALLOC = "${NOMAD_ALLOC_ID}"
        NODE  = "${node.unique.id}"
      }
      resources {
        cpu        = 500
        memory     = 256
        memory_max = 512
      }
      logs {
        max_files     = 3
        max_file_size = 20
      }
      template {
        data        = "hello"
        destination = "local/hello.txt"
        change_mode = "noop"
      }
      artifact {
        source      = "https://example.com/a.tgz"
        destination = "local/a"
        options { checksum = "md5:abc" }
      }
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
      lifecycle {
        hook    = "prestart"
        sidecar = true
      }
    }

    volume "data" {
      type      = "host"
      source    = "data"
      read_only = true
    }
  }
}
'''


def wire():
    return to_wire(parse(FULL_JOB, "web.nomad.hcl"))


def test_job_level_fields():
    job = wire()
    assert (job["ID"], job["Name"], job["Region"], job["Namespace"]) == ("web", "web", "eu", "apps")
    assert (job["Type"], job["Priority"], job["AllAtOnce"]) == ("service", 70, True)
    assert job["Datacenters"] == ["dc1", "dc2"]
    assert job["NodePool"] == "edge"
    assert job["Meta"] == {"owner": "team-a"}


def test_constraint_shorthands_and_runtime_references():
    constraints = wire()["Constraints"]
    assert constraints[0] == {"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}
    assert constraints[1]["Operand"] == "distinct_hosts"
    assert constraints[2] == {"LTarget": "${meta.rack}", "RTarget": "", "Operand": "distinct_property"}
    assert constraints[3] == {"LTarget": "${attr.os.version}", "RTarget": ">= 20.04", "Operand": "version"}


def test_affinity_and_spread():
    job = wire()
    assert job["Affinities"] == [{"LTarget": "${node.datacenter}", "RTarget": "dc1", "Operand": "=", "Weight": 80}]
    spread = job["Spreads"][0]
    assert spread["Attribute"] == "${node.datacenter}" and spread["Weight"] == 50
    assert spread["SpreadTarget"] == [{"Value": "dc1", "Percent": 60}, {"Value": "dc2", "Percent": 40}]


def test_group_fields_and_ports():
    group = wire()["TaskGroups"][0]
    assert (group["Name"], group["Count"], group["ShutdownDelay"]) == ("frontend", 3, 6 * SECOND)
    assert group["Meta"] == {"tier": "front"}
    network = group["Networks"][0]
    assert network["Mode"] == "bridge"
    assert [(p["Label"], p["To"]) for p in network["DynamicPorts"]] == [("http", 8080)]
    reserved = network["ReservedPorts"]
    assert [(p["Label"], p["Value"], p["HostNetwork"]) for p in reserved] == [("admin", 9000, "private")]


def test_partial_policies_are_completed_with_type_defaults():
    group = wire()["TaskGroups"][0]
    assert group["RestartPolicy"] == {"Attempts": 5, "Interval": 30 * MINUTE, "Delay": 10 * SECOND,
                                      "Mode": "delay", "RenderTemplates": False}
    assert group["ReschedulePolicy"] == {"Attempts": 0, "Interval": 0, "Delay": MINUTE,
                                         "DelayFunction": "constant", "MaxDelay": HOUR,
                                         "Unlimited": False}
    assert group["EphemeralDisk"] == {"Sticky": True, "SizeMB": 500, "Migrate": False}


def test_task_fields():
    task = wire()["TaskGroups"][0]["Tasks"][0]
    assert (task["Name"], task["Driver"], task["User"]) == ("server", "docker", "nobody")
    assert task["KillTimeout"] == 90 * SECOND
    assert (task["KillSignal"], task["Leader"], task["ShutdownDelay"]) == ("SIGINT", True, 2 * SECOND)
    assert task["Config"] == {"image": "nginx:1.25", "ports": ["http"],
                              "args": ["--port", "${NOMAD_PORT_http}", '${env["HOME"]}']}
    assert task["Env"] == {"ALLOC": "${NOMAD_ALLOC_ID}", "NODE": "${node.unique.id}"}
    resources = task["Resources"]
    assert (resources["CPU"], resources["MemoryMB"], resources["MemoryMaxMB"]) == (500, 256, 512)
    assert (task["LogConfig"]["MaxFiles"], task["LogConfig"]["MaxFileSizeMB"]) == (3, 20)
    assert task["Lifecycle"] == {"Hook": "prestart", "Sidecar": True}


def test_dict_kept_blocks_use_nomad_json_names():
    group = wire()["TaskGroups"][0]
    task = group["Tasks"][0]
    assert task["Templates"] == [{"EmbeddedTmpl": "hello", "DestPath": "local/hello.txt", "ChangeMode": "noop",
                                  "Perms": "0644", "Splay": 5 * SECOND, "ErrMissingKey": False}]
    assert task["Artifacts"] == [{"GetterSource": "https://example.com/a.tgz", "RelativeDest": "local/a",
                                  "GetterOptions": {"checksum": "md5:abc"}}]
    assert task["VolumeMounts"] == [{"Volume": "data", "Destination": "/data"}]
    assert group["Volumes"] == {"data": {"Type": "host", "Source": "data", "ReadOnly": True, "Name": "data"}}
    service = group["Services"][0]
    assert (service["Name"], service["PortLabel"], service["Provider"]) == ("web", "http", "nomad")
    assert service["Checks"] == [{"Type": "http", "Path": "/health", "Interval": 10 * SECOND,
                                  "Timeout": 2 * SECOND}]


def test_durations_as_strings_or_numbers():
    job = to_wire(parse('''job "d" {
      group "g" {
        task "t" {
          driver = "raw_exec"
          kill_timeout = 2000000000
          shutdown_delay = "1.5s"
        }
      }
    }'''))
    task = job["TaskGroups"][0]["Tasks"][0]
    assert task["KillTimeout"] == 2 * SECOND
    assert task["ShutdownDelay"] == 1500 * 1_000_000


def test_job_level_task_becomes_a_group():
    job = parse('job "solo" {\n task "only" { driver = "raw_exec" }\n}')
    assert [g.name for g in job.task_groups] == ["only"]
    assert [t.name for t in job.task_groups[0].tasks] == ["only"]


def test_env_and_meta_as_maps_and_name_override():
    job = parse('''job "m" {
      name = "pretty"
      meta = { "a.b" = 1 }
      group "g" {
        task "t" {
          driver = "raw_exec"
          env = { PATH = "/bin", N = 3 }
        }
      }
    }''')
    assert (job.id, job.name, job.meta) == ("m", "pretty", {"a.b": "1"})
    assert job.task_groups[0].tasks[0].env == {"PATH": "/bin", "N": "3"}


def test_periodic_and_parameterized():
    job = to_wire(parse('''job "p" {
      type = "batch"
      periodic {
        cron             = "*/5 * * * *"
        prohibit_overlap = true
        time_zone        = "Europe/Paris"
      }
      parameterized {
        payload       = "required"
        meta_required = ["who"]
      }
      group "g" {
        task "t" {
          driver = "raw_exec"
          dispatch_payload { file = "input.txt" }
        }
      }
    }'''))
    assert job["Periodic"] == {"Enabled": True, "Spec": "*/5 * * * *", "Specs": None, "SpecType": "cron",
                               "ProhibitOverlap": True, "TimeZone": "Europe/Paris"}
    assert job["ParameterizedJob"] == {"Payload": "required", "MetaRequired": ["who"], "MetaOptional": None}
    assert job["TaskGroups"][0]["Tasks"][0]["DispatchPayload"] == {"File": "input.txt"}


def test_update_and_migrate_merge_job_level_into_groups():
    job = parse('''job "u" {
      update {
        max_parallel = 2
        canary       = 1
      }
      migrate { max_parallel = 3 }
      group "a" {
        update { canary = 2 }
        task "t" { driver = "raw_exec" }
      }
      group "b" {
        task "t" { driver = "raw_exec" }
      }
    }''')
    assert (job.update.max_parallel, job.update.canary, job.update.healthy_deadline) == (2, 1, 5 * MINUTE)
    group_a, group_b = job.task_groups
    assert (group_a.update.max_parallel, group_a.update.canary) == (2, 2)
    assert group_a.update.min_healthy_time == 10 * SECOND
    assert group_a.migrate.max_parallel == 3 and group_b.migrate.max_parallel == 3
    assert group_b.update is None  # inherited later, by canonicalize


def test_task_restart_merges_over_group_restart():
    job = parse('''job "r" {
      type = "batch"
      group "g" {
        restart { attempts = 1 }
        task "t" {
          driver = "raw_exec"
          restart { delay = "1s" }
        }
      }
    }''')
    group = job.task_groups[0]
    assert (group.restart_policy.attempts, group.restart_policy.interval) == (1, 24 * HOUR)
    task_policy = group.tasks[0].restart_policy
    assert (task_policy.attempts, task_policy.delay, task_policy.interval) == (1, SECOND, 24 * HOUR)


def test_heredoc_strings_and_escapes():
    job = parse('''job "h" {
      group "g" {
        task "t" {
          driver = "raw_exec"
          config {
            script = <<-EOT
              echo "${NOMAD_TASK_NAME}"
              echo $${literal}
            EOT
            quoted = "tab\\there \\"q\\" $${x} \\u00e9"
          }
        }
      }
    }''')
    config = job.task_groups[0].tasks[0].config
    assert config["script"] == 'echo "${NOMAD_TASK_NAME}"\necho ${literal}\n'
    assert config["quoted"] == 'tab\there "q" ${x} é'


def test_group_and_job_vault_are_inherited_by_tasks():
    job = to_wire(parse('''job "v" {
      vault { role = "job-role" }
      group "a" {
        vault { role = "group-role" }
        task "t1" { driver = "raw_exec" }
        task "t2" {
          driver = "raw_exec"
          vault { role = "own" }
        }
      }
      group "b" {
        task "t3" { driver = "raw_exec" }
      }
    }'''))
    roles = [t["Vault"]["Role"] for g in job["TaskGroups"] for t in g["Tasks"]]
    assert roles == ["group-role", "own", "job-role"]
    vault = job["TaskGroups"][1]["Tasks"][0]["Vault"]
    assert (vault["Env"], vault["DisableFile"], vault["ChangeMode"]) == (True, False, "restart")


def test_heredoc_closing_marker_may_have_trailing_spaces():
    text = 'job "h" {\n group "g" {\n task "t" {\n driver = "raw_exec"\n config {\n data = <<EOH\nline\nEOH   \n }\n }\n }\n}\n'
    assert parse(text).task_groups[0].tasks[0].config["data"] == "line\n"
