"""validate(): Nomad's Job.Validate messages on canonicalized jobs."""

from yurt.jobspec import parse, validate
from yurt.structs import Job
from yurt.structs.defaults import canonicalize


def problems(text: str) -> list[str]:
    return validate(canonicalize(parse(text)))


def job_with(job_body: str = "", group_body: str = "", task_body: str = 'driver = "raw_exec"') -> str:
    return f'job "j" {{\n{job_body}\n group "g" {{\n{group_body}\n task "t" {{\n{task_body}\n }}\n }}\n}}\n'


def test_valid_job_has_no_problems():
    assert problems(job_with()) == []


def test_missing_id_and_task_groups():
    errors = validate(canonicalize(Job()))
    assert "Missing job ID" in errors and "Missing job task groups" in errors


def test_id_with_space_and_null():
    assert "Job ID contains a space" in problems('job "a b" {\n group "g" {\n task "t" { driver = "x" }\n }\n}')
    job = canonicalize(parse(job_with()))
    job.id = "a\x00b"
    assert "Job ID contains a null character" in validate(job)


def test_bad_type_and_priority():
    errors = problems(job_with('type = "cron"\npriority = 101'))
    assert 'Invalid job type: "cron"' in errors
    assert "job priority must be between [1, 100]" in errors


def test_negative_count_and_duplicate_names():
    errors = problems('job "j" {\n group "g" {\n count = -1\n task "t" { driver = "x" }\n'
                      ' task "t" { driver = "x" }\n }\n group "g" {\n task "t" { driver = "x" }\n }\n}')
    assert "Job task group 2 redefines 'g' from group 1" in errors
    assert "Task group g validation failed: Task group count can't be negative" in errors
    assert "Task group g validation failed: Task 2 redefines 't' from task 1" in errors


def test_task_without_driver():
    assert problems(job_with(task_body="")) == [
        "Task group g validation failed: Task t validation failed: Missing task driver"]


def test_constraint_operand_and_regexp():
    errors = problems(job_with('constraint {\n attribute = "${attr.x}"\n operator = "~"\n value = "1"\n}\n'
                               'constraint {\n attribute = "${attr.y}"\n regexp = "(["\n}'))
    assert 'Constraint 1 validation failed: Unknown constraint type "~"' in errors
    assert any(e.startswith("Constraint 2 validation failed: Regular expression failed to compile")
               for e in errors)


def test_constraint_requires_rtarget():
    errors = problems(job_with('constraint {\n attribute = "${attr.x}"\n}'))
    assert errors == ['Constraint 1 validation failed: Operator "=" requires an RTarget']


def test_port_label_used_twice():
    errors = problems(job_with(group_body='network {\n port "http" {}\n port "http" { static = 80 }\n}'))
    assert "Task group g validation failed: Task group network validation failed: " \
           "Port label http already in use by taskgroup network" in errors


def test_periodic_and_parameterized_need_batch():
    errors = problems(job_with('periodic { cron = "@daily" }\nparameterized {}'))
    assert 'Periodic can only be used with "batch" or "sysbatch" scheduler' in errors
    assert 'Parameterized job can only be used with "batch" or "sysbatch" scheduler' in errors
    errors = problems(job_with('type = "system"\nperiodic { cron = "@daily" }'))
    assert 'Periodic can only be used with "batch" or "sysbatch" scheduler' in errors
    assert problems(job_with('type = "batch"\nperiodic { cron = "*/5 * * * *" }')) == []


def test_system_job_count_and_update_on_batch():
    errors = problems(job_with('type = "system"', group_body="count = 2"))
    assert "Job task group g has count 2. Count cannot exceed 1 with system scheduler" in errors
    errors = problems(job_with('type = "batch"', group_body="update { max_parallel = 1 }"))
    assert 'Task group g validation failed: Job type "batch" does not allow update block' in errors


def test_restart_mode_and_resources_minimums():
    errors = problems(job_with(group_body='restart { mode = "sometimes" }',
                               task_body='driver = "x"\nresources { memory = 5 }'))
    assert 'Task group g validation failed: Unsupported restart mode: "sometimes"' in errors
    assert "Task group g validation failed: Task t validation failed: minimum MemoryMB value is 10; got 5" in errors


def test_affinity_weight_and_spread_percentages():
    errors = problems(job_with('affinity {\n attribute = "${node.class}"\n value = "a"\n weight = 0\n}\n'
                               'spread {\n attribute = "${node.datacenter}"\n target "a" { percent = 70 }\n'
                               ' target "b" { percent = 40 }\n}'))
    assert "Affinity 1 validation failed: Affinity weight cannot be zero" in errors
    assert "Spread 1 validation failed: Sum of spread target percentages must not be greater than 100%; got 110%" in errors
