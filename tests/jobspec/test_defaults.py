"""canonicalize: Nomad's defaults, idempotent, never mutating its input."""

import pytest

from yurt.jobspec import parse
from yurt.structs import HOUR, MINUTE, SECOND, Job, Task, TaskGroup, deep_copy
from yurt.structs.defaults import canonicalize

MINIMAL = 'job "m" {\n  type = "%s"\n  group "g" {\n    task "t" { driver = "raw_exec" }\n  }\n}\n'


def minimal(job_type: str = "service") -> Job:
    return canonicalize(parse(MINIMAL % job_type))


def test_job_level_defaults():
    job = canonicalize(Job(id="api-only", region="", namespace="", type="", priority=0, node_pool="",
                           task_groups=[TaskGroup(name="g", tasks=[Task(name="t", driver="mock")])]))
    assert (job.name, job.region, job.namespace, job.type) == ("api-only", "global", "default", "service")
    assert (job.priority, job.node_pool, job.datacenters) == (50, "default", ["*"])


def test_group_and_task_defaults_for_service_jobs():
    group = minimal().task_groups[0]
    assert group.count == 1
    assert (group.restart_policy.attempts, group.restart_policy.interval,
            group.restart_policy.delay, group.restart_policy.mode) == (2, 30 * MINUTE, 15 * SECOND, "fail")
    policy = group.reschedule_policy
    assert (policy.delay, policy.delay_function, policy.max_delay, policy.unlimited) == (
        30 * SECOND, "exponential", HOUR, True)
    assert group.ephemeral_disk.size_mb == 300
    assert (group.migrate.max_parallel, group.migrate.health_check) == (1, "checks")
    assert (group.update.max_parallel, group.update.healthy_deadline,
            group.update.progress_deadline) == (1, 5 * MINUTE, 10 * MINUTE)
    task = group.tasks[0]
    assert (task.resources.cpu, task.resources.memory_mb) == (100, 300)
    assert (task.log_config.max_files, task.log_config.max_file_size_mb) == (10, 10)
    assert task.kill_timeout == 5 * SECOND
    assert task.restart_policy == group.restart_policy


def test_batch_defaults():
    job = minimal("batch")
    group = job.task_groups[0]
    assert (group.restart_policy.attempts, group.restart_policy.interval) == (3, 24 * HOUR)
    policy = group.reschedule_policy
    assert (policy.attempts, policy.interval, policy.delay, policy.delay_function) == (
        1, 24 * HOUR, 5 * SECOND, "constant")
    assert job.update is None and group.update is None and group.migrate is None


@pytest.mark.parametrize("job_type", ["system", "sysbatch"])
def test_system_jobs_are_never_rescheduled(job_type):
    group = minimal(job_type).task_groups[0]
    assert group.reschedule_policy is None
    assert group.migrate is None


def test_explicit_values_are_kept():
    job = canonicalize(parse('''job "k" {
      priority = 80
      datacenters = ["east"]
      group "g" {
        count = 0
        ephemeral_disk { size = 1000 }
        task "t" {
          driver = "raw_exec"
          kill_timeout = "30s"
          resources {
            cores  = 2
            memory = 1024
          }
        }
      }
    }'''))
    group = job.task_groups[0]
    assert (job.priority, job.datacenters, group.count) == (80, ["east"], 0)
    assert group.ephemeral_disk.size_mb == 1000
    task = group.tasks[0]
    assert (task.kill_timeout, task.resources.cpu, task.resources.cores) == (30 * SECOND, 0, 2)


def test_idempotent_and_does_not_mutate_input():
    job = parse(MINIMAL % "service")
    before = deep_copy(job)
    once = canonicalize(job)
    assert job == before
    assert canonicalize(once) == once
    assert once != job


def test_job_update_is_copied_into_groups_without_one():
    job = canonicalize(parse('''job "u" {
      update { max_parallel = 3 }
      group "a" {
        task "t" { driver = "raw_exec" }
      }
    }'''))
    assert job.task_groups[0].update == job.update
    assert job.task_groups[0].update.max_parallel == 3


def test_idempotent_on_every_example_and_template():
    from pathlib import Path

    from yurt.jobspec import example_job

    texts = [p.read_text() for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.nomad.hcl")]
    texts += [example_job(), example_job(short=True)]
    for text in texts:
        once = canonicalize(parse(text))
        assert canonicalize(once) == once
