"""`yurt job validate` / `job run` on job files: -var, -var-file, -hcl2-strict, and
validation errors that name file:line:col."""

JOB = ('variable "n" {\n  type = number\n}\n\njob "v" {\n  group "g" {\n    count = var.n\n'
       '    task "t" {\n      driver = "docker"\n    }\n  }\n}\n')


def test_validate_with_var_and_var_file(run_cli, tmp_path):
    path = tmp_path / "v.nomad.hcl"
    path.write_text(JOB)
    vars_file = tmp_path / "v.vars.json"
    vars_file.write_text('{"n": 2}')
    assert run_cli("job", "validate", "-var", "n=3", str(path)).code == 0
    assert run_cli("job", "validate", f"-var-file={vars_file}", str(path)).code == 0
    res = run_cli("job", "validate", str(path))
    assert res.code == 1 and 'v.nomad.hcl:1,1-9: Unset variable "n"' in res.err


def test_undeclared_var_is_an_error_unless_not_strict(run_cli, tmp_path):
    path = tmp_path / "v.nomad.hcl"
    path.write_text(JOB)
    res = run_cli("job", "validate", "-var", "n=1", "-var", "m=2", str(path))
    assert res.code == 1 and 'A "m" variable was passed in but was not found' in res.err
    assert run_cli("job", "validate", "-hcl2-strict=false", "-var", "n=1", "-var", "m=2", str(path)).code == 0


def test_validation_errors_name_the_line(run_cli, tmp_path):
    path = tmp_path / "bad.nomad.hcl"
    path.write_text(JOB.replace("count = var.n", "count = -1").replace('driver = "docker"', "")
                    .replace('variable "n" {\n  type = number\n}\n', ""))
    res = run_cli("job", "validate", str(path))
    assert res.code == 1
    assert res.err.startswith("Job validation errors:\n2 errors occurred:\n")
    assert "bad.nomad.hcl:4,13-15: Invalid count; Task group count can't be negative: -1." in res.err
    assert 'bad.nomad.hcl:5,5-9: Missing task driver' in res.err


def test_run_output_uses_vars_and_does_not_submit(fake, run_cli, tmp_path):
    path = tmp_path / "v.nomad.hcl"
    path.write_text(JOB)
    res = run_cli("job", "run", "-output", "-var", "n=4", str(path))
    assert res.code == 0 and '"Count": 4' in res.out and res.out.lstrip().startswith('{\n    "Job": {')


def test_run_output_prints_even_an_invalid_job_as_nomad_does(fake, run_cli, tmp_path):
    path = tmp_path / "bad.nomad.hcl"
    path.write_text('job "b" {\n  group "g" {\n    count = -1\n    task "t" {}\n  }\n}\n')
    res = run_cli("job", "run", "-output", str(path))
    assert res.code == 0 and '"Count": -1' in res.out
    assert run_cli("job", "run", str(path)).code == 1
