"""One table of bad job files: each kind of mistake gives a message a person can act on,
at the right line. Parsed with `checks=True`, as `yurt job validate` and `job run` do."""

import json

import pytest

from yurt.jobspec import JobspecError, parse


def job(group_body: str = "", task_body: str = 'driver = "docker"', job_body: str = "") -> str:
    """A job whose group body starts on line 4 and task body on line 6."""
    return (f'job "web" {{\n{job_body}\n  group "g" {{\n{group_body}\n    task "t" {{\n'
            f"{task_body}\n    }}\n  }}\n}}\n")


CASES = [
    ("unknown argument", job("cuont = 2"), 4, 'An argument named "cuont" is not expected here. Did you mean "count"?'),
    ("unknown block", job("netwrok {}"), 4, 'Blocks of type "netwrok" are not expected here. Did you mean "network"?'),
    ("unknown top-level block", 'jobb "x" {}\n', 1, 'Did you mean "job"?'),
    ("attribute as block", job("count {}"), 4, 'Did you mean to define argument "count"?'),
    ("block as attribute", job("restart = 1"), 4, 'Did you mean to define a block of type "restart"?'),
    ("wrong type number", job('count = "three"'), 4, 'Inappropriate value for attribute "count": a number is required'),
    ("wrong type bool", job('task "u" {\n leader = "maybe"\n}'), 5, "a bool is required"),
    ("wrong type list", job(job_body='  datacenters = "dc1"'), 2, "list of string required"),
    ("fractional count", job("count = 1.5"), 4, "a whole number is required"),
    ("bad duration", job('shutdown_delay = "5 minutes"'), 4, "Invalid duration"),
    ("duration missing unit", job('shutdown_delay = "5"'), 4, "Invalid duration"),
    ("syntax error", job("count = = 2"), 4, "Invalid syntax"),
    ("unclosed block", 'job "web" {\n  group "g" {\n', 3, "Invalid syntax"),
    ("duplicate attribute", job("count = 1\ncount = 2"), 5, 'The argument "count" was already set at'),
    ("duplicate single block", job("restart {}\nrestart {}"), 5, "Only one restart block is allowed"),
    ("missing label", job("volume {}"), 4, "Missing name for volume"),
    ("extra label", job('restart "x" {}'), 4, "Extraneous label for restart"),
    ("undeclared variable", job("count = var.n"), 4, 'An input variable with the name "n" has not been declared'),
    ("undeclared local", job("count = local.n"), 4, 'A local value with the name "n" has not been declared'),
    ("unknown function", job("count = cuont(1)"), 4, 'There is no function named "cuont"'),
    ("function error", job('count = parseint("zz", 10)'), 4, 'Call to function "parseint" failed'),
    ("unset variable", 'variable "n" {}\n' + job("count = var.n"), 1, 'Unset variable "n"'),
    ("failed variable validation",
     'variable "n" {\n  default = 0\n  validation {\n    condition = var.n > 0\n    error_message = "n must be positive."\n  }\n}\n'
     + job("count = var.n"), 4, "n must be positive."),
    ("missing job block", 'locals {\n  a = 1\n}\n', 1, "A job block is required"),
    ("two job blocks", job() + 'job "other" {}\n', 10, "Only one job block is allowed"),
    ("local cycle", 'locals {\n  a = local.b\n  b = local.a\n}\n' + job(), 2, "Cycle in local values"),
    ("bad template directive", job('meta = { a = "%{ if 1 }x%{ endif }" }'), 4, "Invalid template if condition"),
    ("unterminated for directive", job('meta = { a = "%{ for x in [1] }x" }'), 4, "Unterminated template directive"),
    ("dynamic without for_each", job('dynamic "service" {\n  content {}\n}'), 4, 'requires argument "for_each"'),
    ("dynamic for_each not a collection", job('dynamic "service" {\n  for_each = 3\n  content {}\n}'), 5,
     "An iterable collection is required"),
    ("priority out of range", job(job_body="  priority = 101"), 2, "job priority must be between [1, 100]; got 101"),
    ("negative count", job("count = -2"), 4, "Task group count can't be negative: -2"),
    ("unknown job type", job(job_body='  type = "servce"'), 2, '"servce" is not a job type'),
    ("driver-less task", job(task_body=""), 5, 'Task "t" has no "driver" argument'),
    ("duplicate group", job() + "", 3, None),  # replaced below
    ("duplicate task", job('task "t" {\n driver = "x"\n}'), 7, 'A task named "t" was already defined'),
    ("undefined service port", job('network {\n port "http" {}\n}\nservice {\n name = "s"\n port = "htp"\n}'), 9,
     'uses port "htp", which no network block defines'),
    ("undefined driver config port", job(task_body='driver = "docker"\nconfig {\n ports = ["db"]\n}'), 8,
     'The driver config of task "t" uses port "db"'),
    ("invalid constraint operator", job('constraint {\n attribute = "${attr.x}"\n operator = "~="\n value = "1"\n}'), 4,
     'Unknown constraint type "~="'),
    ("invalid constraint regexp", job('constraint {\n attribute = "${attr.x}"\n regexp = "(["\n}'), 4,
     "Regular expression failed to compile"),
    ("distinct_property without attribute", job('constraint {\n operator = "distinct_property"\n}'), 4,
     "no attribute provided but is required by operator"),
    ("distinct_hosts at task level", job(task_body='driver = "x"\nconstraint {\n distinct_hosts = true\n}'), 7,
     'The "distinct_hosts" operator is not allowed at task level'),
    ("bad cron spec", 'job "b" {\n  type = "batch"\n  periodic {\n    cron = "61 * * * *"\n  }\n'
     '  group "g" {\n    task "t" {\n      driver = "x"\n    }\n  }\n}\n', 4, 'syntax error in minute field "61"'),
    ("periodic on service job", job(job_body='  periodic {\n    cron = "@daily"\n  }'), 2,
     'Periodic can only be used with "batch" or "sysbatch" scheduler, not "service"'),
    ("parameterized on service job", job(job_body="  parameterized {}"), 2,
     'Parameterized job can only be used with "batch" or "sysbatch" scheduler'),
    ("canary tags without update", job('network {\n port "http" {}\n}\nservice {\n name = "s"\n port = "http"\n'
                                       ' canary_tags = ["c"]\n}'), 10, "has no update block with canary > 0"),
    ("affinity weight zero", job('affinity {\n attribute = "${attr.x}"\n value = "1"\n weight = 0\n}'), 4,
     "Affinity weight cannot be zero"),
    ("spread over 100 percent", job('spread {\n attribute = "${node.datacenter}"\n target "a" {\n percent = 70\n }\n'
                                    ' target "b" {\n percent = 40\n }\n}'), 4,
     "Sum of spread target percentages must not be greater than 100%"),
    ("system job with count", job("count = 3", job_body='  type = "system"'), 4,
     "Count cannot exceed 1 with system scheduler"),
    ("group scaling without max", job("scaling {\n min = 1\n}"), 4, 'The argument "max" is required'),
    ("group scaling with a bad type", job('scaling {\n max = 3\n type = "vertical"\n}'), 6,
     'task group scaling policy had invalid type: "vertical"'),
    ("task scaling with a bad label", job(task_body='driver = "x"\nscaling "disk" {\n max = 3\n}'), 7,
     'scaling policy name must be "cpu" or "mem"'),
    ("duplicate task scaling", job(task_body='driver = "x"\nscaling "cpu" {\n max = 3\n}\nscaling "cpu" {\n max = 4\n}'),
     10, 'Duplicate scaling "cpu" block'),
]
CASES[34] = ("duplicate group", job().replace('  group "g" {', '  group "g" {\n    task "a" {\n'
                                                '      driver = "x"\n    }\n  }\n  group "g" {', 1), 8,
             'A group named "g" was already defined')


@pytest.mark.parametrize("text,line,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_reported_with_message_and_line(text, line, message):
    with pytest.raises(JobspecError) as info:
        parse(text, "web.nomad.hcl", env={}, checks=True)
    found = [(d.line, d.message) for d in info.value.diagnostics]
    assert any(message in text_ and at == line for at, text_ in found), found


def test_there_are_at_least_30_kinds():
    assert len({c[0] for c in CASES}) >= 30


def test_undeclared_cli_variable_is_an_error_only_in_strict_mode():
    with pytest.raises(JobspecError, match='A "nope" variable was passed in but was not found'):
        parse(job(), "web.nomad.hcl", {"nope": "1"}, env={})
    assert parse(job(), "web.nomad.hcl", {"nope": "1"}, env={}, strict=False).id == "web"


def test_non_strict_mode_ignores_unknown_keys():
    parsed = parse(job("cuont = 2\nunknown_block {}"), "web.nomad.hcl", env={}, strict=False)
    assert parsed.task_groups[0].count == 1


def test_json_job_errors_name_the_json_path():
    text = json.dumps({"job": {"web": {"group": {"g": {"cuont": 2, "task": {"t": {"driver": "x"}}}}}}})
    with pytest.raises(JobspecError) as info:
        parse(text, "web.nomad.json", env={})
    assert str(info.value) == ('web.nomad.json: job.web.group.g.cuont: Unsupported argument; An argument '
                               'named "cuont" is not expected here. Did you mean "count"?')


def test_all_problems_are_reported_at_once():
    text = job("count = -1", task_body="", job_body="  priority = -3")
    with pytest.raises(JobspecError) as info:
        parse(text, "web.nomad.hcl", env={}, checks=True)
    assert [d.line for d in info.value.diagnostics] == [2, 4, 5]


def test_api_json_job_checks_name_the_json_path():
    text = json.dumps({"Job": {"ID": "web", "Priority": 500, "TaskGroups": [
        {"Name": "g", "Count": -1, "Tasks": [{"Name": "t"}]}]}})
    with pytest.raises(JobspecError) as info:
        parse(text, "web.json", env={}, checks=True)
    assert [str(d) for d in info.value.diagnostics] == [
        "web.json: Job.Priority: Invalid priority; job priority must be between [1, 100]; got 500.",
        "web.json: Job.TaskGroups[0].Count: Invalid count; Task group count can't be negative: -1.",
        'web.json: Job.TaskGroups[0].Tasks[0]: Missing task driver; Task "t" has no "driver" argument; '
        'every task needs one (e.g. driver = "docker").']
