"""Bad job files: each problem is reported with its file, line, column and a clear message."""

import pytest

from yurt.jobspec import Diagnostic, JobspecError, parse


def errors_of(text: str, **kwargs) -> list[Diagnostic]:
    with pytest.raises(JobspecError) as info:
        parse(text, "web.nomad.hcl", **kwargs)
    return info.value.diagnostics


def only_error(text: str, **kwargs) -> Diagnostic:
    diagnostics = errors_of(text, **kwargs)
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


def task_job(task_body: str, group_body: str = "") -> str:
    return (f'job "web" {{\n  group "g" {{\n{group_body}\n    task "t" {{\n'
            f'      driver = "raw_exec"\n{task_body}\n    }}\n  }}\n}}\n')


def test_unknown_argument_names_key_line_and_suggestion():
    error = only_error('job "web" {\n  group "g" {\n    cuont = 2\n  }\n}\n')
    assert (error.line, error.column, error.end_column) == (3, 5, 10)
    assert str(error) == ('web.nomad.hcl:3,5-10: Unsupported argument; An argument named "cuont" '
                          'is not expected here. Did you mean "count"?')


def test_unknown_block_type_with_suggestion():
    error = only_error('job "web" {\n  grup "g" {}\n}\n')
    assert error.line == 2
    assert 'Blocks of type "grup" are not expected here. Did you mean "group"?' in error.message


def test_unknown_name_without_close_match_has_no_suggestion():
    error = only_error('job "web" {\n  zzzzzzzz = 1\n}\n')
    assert error.line == 2 and "Did you mean" not in error.message


def test_attribute_written_as_block_and_block_as_attribute():
    error = only_error(task_job("      resources = { cpu = 1 }"))
    assert error.line == 6
    assert 'Did you mean to define a block of type "resources"?' in error.message
    error = only_error('job "web" {\n  priority {}\n}\n')
    assert error.line == 2 and 'Did you mean to define argument "priority"?' in error.message


def test_wrong_type_for_number():
    error = only_error('job "web" {\n  group "g" {\n    count = "many"\n  }\n}\n')
    assert error.line == 3
    assert 'Inappropriate value for attribute "count": a number is required.' in error.message


def test_wrong_type_for_list():
    error = only_error('job "web" {\n  datacenters = "dc1"\n}\n')
    assert error.line == 2 and "list of string required" in error.message


def test_wrong_type_for_bool():
    error = only_error('job "web" {\n  all_at_once = [1]\n}\n')
    assert error.line == 2 and "a bool is required" in error.message


def test_invalid_duration():
    error = only_error(task_job('      kill_timeout = "5 seconds"'))
    assert error.line == 6
    assert 'time: invalid duration "5 seconds"' in error.message


def test_duration_without_unit():
    error = only_error(task_job('      kill_timeout = "5"'))
    assert 'time: missing unit in duration "5"' in error.message


def test_syntax_error_has_line_and_column():
    error = only_error('job "web" {\n  group "g" {\n    count = \n  }\n}\n')
    assert error.line == 3 and error.column > 1
    assert error.message.startswith("Invalid syntax")


def test_unclosed_block_is_a_syntax_error():
    error = only_error('job "web" {\n  group "g" {\n')
    assert error.message.startswith("Invalid syntax") and error.line >= 2


def test_duplicate_attribute():
    error = only_error('job "web" {\n  priority = 1\n  priority = 2\n}\n')
    assert error.line == 3
    assert 'The argument "priority" was already set at web.nomad.hcl:2,3-11' in error.message


def test_duplicate_single_block():
    error = only_error(task_job("      resources {}\n      resources {}"))
    assert error.line == 7 and error.message.startswith("Duplicate resources block")


def test_missing_and_extra_labels():
    error = only_error('job "web" {\n  group {}\n}\n')
    assert error.line == 2 and error.message.startswith("Missing name for group")
    error = only_error('job "web" {\n  group "g" {\n    restart "x" {}\n  }\n}\n')
    assert error.line == 3 and error.message.startswith("Extraneous label for restart")


def test_undeclared_variable_reference():
    error = only_error('job "web" {\n  priority = var.prio\n}\n')
    assert (error.line, error.column) == (2, 14)
    assert 'An input variable with the name "prio" has not been declared.' in error.message


def test_undeclared_local_reference():
    error = only_error('job "web" {\n  region = local.where\n}\n')
    assert error.line == 2 and 'A local value with the name "where" has not been declared.' in error.message


def test_unknown_function():
    error = only_error('job "web" {\n  region = frobnicate("x")\n}\n')
    assert error.line == 2 and 'There is no function named "frobnicate".' in error.message


def test_undeclared_cli_variable_in_strict_mode():
    error = only_error('job "web" {}\n', variables={"nope": "1"})
    assert '"nope" variable was passed in but was not found' in error.message


def test_unset_required_variable():
    error = only_error('variable "image" {}\njob "web" {}\n')
    assert error.line == 1 and error.message.startswith('Unset variable "image"')


def test_missing_job_block():
    error = only_error('variable "x" { default = 1 }\n')
    assert error.message.startswith("Missing job block")


def test_all_errors_are_reported_at_once_in_line_order():
    text = task_job('      kill_timeout = "x"\n      bogus = 1', group_body='    cuont = 1')
    diagnostics = errors_of(text)
    assert [d.line for d in diagnostics] == [3, 6, 7]
    assert str(JobspecError(diagnostics)).count("\n") == 2


def test_invalid_json_reports_line_and_column():
    error = only_error('{\n  "Job": {\n    "ID": "x",\n  }\n}\n')
    assert error.line == 4 and error.message.startswith("Invalid JSON")


def test_json_with_wrong_type_names_the_field():
    error = only_error('{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Count": "three"}]}}')
    assert "$.TaskGroups[0].Count" in error.message


def test_unset_variable_is_reported_once_not_at_each_use():
    diagnostics = errors_of('variable "n" {}\njob "web" {\n  priority = var.n\n  region = var.n\n}\n')
    assert [d.line for d in diagnostics] == [1]


def test_failed_local_is_reported_once():
    diagnostics = errors_of('locals {\n  x = nosuch()\n}\njob "web" {\n  region = local.x\n}\n')
    assert [d.line for d in diagnostics] == [2]
