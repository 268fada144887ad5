"""validate(): services, checks, templates, artifacts, volumes, reschedule, scaling."""

import pytest

from yurt.jobspec import parse, validate
from yurt.structs.defaults import canonicalize


def problems(group_body: str = "", task_body: str = "", job_type: str = "service") -> list[str]:
    text = (f'job "j" {{\n type = "{job_type}"\n group "g" {{\n{group_body}\n task "t" {{\n driver = "docker"\n'
            f'{task_body}\n }}\n }}\n}}\n')
    return validate(canonicalize(parse(text, "j.nomad.hcl", env={})))


PREFIX = "Task group g validation failed: "
TASK = PREFIX + "Task t validation failed: "


@pytest.mark.parametrize("group_body,task_body,expected", [
    ("", 'template {\n destination = "local/x"\n}', TASK + "Template 1 validation failed: Must specify a source path "
     "or have an embedded template"),
    ("", 'template {\n data = "x"\n destination = "../../etc/passwd"\n}',
     TASK + "Template 1 validation failed: destination escapes allocation directory"),
    ("", 'template {\n data = "x"\n destination = "local/x"\n change_mode = "signal"\n}',
     TASK + "Template 1 validation failed: Must specify signal value when change mode is signal"),
    ("", 'template {\n data = "a"\n destination = "local/x"\n}\ntemplate {\n data = "b"\n destination = "local/x"\n}',
     TASK + "Template 2 has same destination as 1"),
    ("", 'artifact {\n destination = "local/"\n}', TASK + "Artifact 1 validation failed: source must be specified"),
    ("", 'artifact {\n source = "https://x"\n mode = "tar"\n}',
     TASK + 'Artifact 1 validation failed: invalid artifact mode "tar"; must be one of: any, file, dir'),
    ("", 'volume_mount {\n volume = "data"\n destination = "/data"\n}',
     TASK + "Volume Mount (0) references undefined volume data"),
    ('service {\n name = "bad_name!"\n}', "", PREFIX + "Service 1: Service name must be valid per RFC 1123"),
    ('service {\n name = "s"\n check {\n type = "http"\n interval = "10s"\n timeout = "1s"\n }\n}', "",
     PREFIX + "Service 1: Check check 1 invalid: http type must have http path"),
    ('service {\n name = "s"\n check {\n name = "c"\n type = "tcp"\n timeout = "1s"\n }\n}', "",
     PREFIX + "Service 1: Check c invalid: missing required value interval. Interval cannot be less than 1s"),
    ('service {\n name = "s"\n provider = "nomad"\n check {\n name = "g"\n type = "grpc"\n interval = "5s"\n'
     ' timeout = "1s"\n }\n}', "", PREFIX + 'Service 1: Check g invalid: check type "grpc" is not supported'),
    ('reschedule {\n attempts = 3\n interval = "1h"\n delay = "1s"\n}', "",
     PREFIX + "Reschedule policy: Delay cannot be less than 5s (got 1s)"),
    ('reschedule {\n delay_function = "linear"\n}', "",
     PREFIX + 'Reschedule policy: Invalid delay function "linear"'),
    ("count = 5\nscaling {\n min = 1\n max = 3\n}", "",
     PREFIX + "Scaling policy invalid: task group count must not be greater than maximum count in scaling policy"),
    ('ephemeral_disk {\n size = 5\n}', "", PREFIX + "minimum DiskMB value is 10; got 5"),
    ('network {\n port "http" {}\n}', 'service {\n name = "s"\n port = "htp"\n}',
     TASK + 'port label "htp" referenced by services s does not exist'),
    ('volume "v" {\n type = "nfs"\n source = "x"\n}', "", PREFIX + 'Volume "v" has an invalid type "nfs"'),
])
def test_problem_is_reported(group_body, task_body, expected):
    errors = problems(group_body, task_body)
    assert any(e.startswith(expected) for e in errors), errors


def test_scaling_min_is_the_default_count():
    job = canonicalize(parse('job "j" {\n group "g" {\n scaling {\n min = 2\n max = 4\n }\n'
                             ' task "t" {\n driver = "x"\n }\n }\n}\n', env={}))
    assert job.task_groups[0].count == 2 and validate(job) == []
    assert job.task_groups[0].scaling["Enabled"] is True and job.task_groups[0].scaling["Type"] == "horizontal"


def test_connect_gateway_group_needs_no_task():
    text = ('job "j" {\n group "gw" {\n network {\n mode = "bridge"\n }\n service {\n name = "ingress"\n'
            ' connect {\n gateway {\n ingress {\n listener {\n port = 8080\n service {\n name = "web"\n }\n'
            ' }\n }\n }\n }\n }\n }\n}\n')
    assert validate(canonicalize(parse(text, env={}))) == []
