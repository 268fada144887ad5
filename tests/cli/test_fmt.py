"""`yurt fmt`: canonical layout, -check exit code 3, -list, -write, -recursive, stdin."""

UGLY = 'job "x"{\ndatacenters=["dc1"]\n  type = "batch"\n\n\n  group "g" {\n count=1\n  }\n}\n'
PRETTY = ('job "x" {\n  datacenters = ["dc1"]\n  type        = "batch"\n\n  group "g" {\n'
          '    count = 1\n  }\n}\n')


def test_fmt_rewrites_files_in_place_and_lists_them(run_cli, tmp_path):
    path = tmp_path / "a.nomad.hcl"
    path.write_text(UGLY)
    res = run_cli("fmt", str(tmp_path))
    assert (res.code, res.out) == (0, f"{path}\n")
    assert path.read_text() == PRETTY
    assert run_cli("fmt", str(path)).out == ""  # already canonical


def test_check_exits_3_without_writing(run_cli, tmp_path):
    path = tmp_path / "a.hcl"
    path.write_text(UGLY)
    res = run_cli("fmt", "-check", str(path))
    assert (res.code, res.out) == (3, f"{path}\n")
    assert path.read_text() == UGLY
    path.write_text(PRETTY)
    assert run_cli("fmt", "-check", str(path)).code == 0


def test_recursive_only_with_flag(run_cli, tmp_path):
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / "b.nomad"
    nested.write_text(UGLY)
    assert run_cli("fmt", "-check", str(tmp_path)).code == 0
    res = run_cli("fmt", "-check", "-recursive", str(tmp_path))
    assert (res.code, res.out) == (3, f"{nested}\n")


def test_stdin_to_stdout_and_write_false(run_cli, tmp_path):
    res = run_cli("fmt", "-", stdin=UGLY)
    assert (res.code, res.out) == (0, PRETTY)
    assert run_cli("fmt", "-check", "-", stdin=UGLY).code == 3
    path = tmp_path / "c.hcl"
    path.write_text(UGLY)
    res = run_cli("fmt", "-write=false", "-list=false", str(path))
    assert (res.code, res.out, path.read_text()) == (0, PRETTY, UGLY)


def test_syntax_error_exits_1_with_line(run_cli, tmp_path):
    path = tmp_path / "bad.hcl"
    path.write_text('job "x" {\n  count = = 1\n}\n')
    res = run_cli("fmt", str(path))
    assert res.code == 1 and f"{path}:2," in res.err


def test_heredocs_and_comments_are_kept(run_cli):
    text = ('job "x" {\n# note\n  meta {\n    a = <<EOF\n  keep   this\nEOF\n  }\n}\n')
    res = run_cli("fmt", "-", stdin=text)
    assert res.out == 'job "x" {\n  # note\n  meta {\n    a = <<EOF\n  keep   this\nEOF\n  }\n}\n'
