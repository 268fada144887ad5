import os

import pytest

from yurt.client.templates import TaskTemplates, TemplateError, parse_env_file, render, render_templates


def test_render_env_literals_comments_and_trim():
    env = {"NOMAD_ALLOC_ID": "abc"}
    assert render('id={{ env "NOMAD_ALLOC_ID" }} x={{ env "MISSING" }}', env) == "id=abc x="
    assert render('a {{- "lit" -}} b{{/* note */}}', env) == "alitb"
    assert render('[[ env "NOMAD_ALLOC_ID" ]]', env, "[[", "]]") == "abc"


def test_unsupported_functions_are_named():
    with pytest.raises(TemplateError, match='"nomadService"'):
        render('{{ range nomadService "web" }}{{ end }}', {})


def test_render_templates_writes_files_and_env(tmp_path):
    templates = [
        {"EmbeddedTmpl": 'id={{ env "ID" }}\n', "DestPath": "local/out.txt", "Perms": "600"},
        {"EmbeddedTmpl": 'A={{ env "ID" }}\n# comment\nexport B="two"\n', "DestPath": "secrets/x.env", "Envvars": True},
    ]
    extra = render_templates(templates, str(tmp_path), {"ID": "7"})
    assert open(tmp_path / "local" / "out.txt").read() == "id=7\n"
    assert oct(os.stat(tmp_path / "local" / "out.txt").st_mode & 0o777) == "0o600"
    assert extra == {"A": "7", "B": "two"}
    with pytest.raises(TemplateError, match="escapes"):
        render_templates([{"EmbeddedTmpl": "x", "DestPath": "../../etc/x"}], str(tmp_path), {})


def test_parse_env_file():
    assert parse_env_file("X=1\n\n#c\nY = 'two'\n") == {"X": "1", "Y": "two"}


# --- errors name the template and the place, as Go's text/template does -----------------------------

def test_parse_errors_name_the_template_and_line():
    with pytest.raises(TemplateError) as info:
        render("a\n{{ end }}", {}, name="local/app.conf")
    assert str(info.value) == "template: local/app.conf:2: unexpected {{end}}"
    with pytest.raises(TemplateError, match=r'^template: t:1: function "nope" not defined$'):
        render("{{ nope }}", {}, name="t")


def test_exec_errors_name_the_template_line_and_column():
    with pytest.raises(TemplateError) as info:
        render('x\n\n   {{ parseInt "zz" }}', {}, name="local/app.conf")
    assert str(info.value) == ('template: local/app.conf:3:6: executing "local/app.conf" at <parseInt "zz">: '
                               'error calling parseInt: parseInt: strconv.ParseInt: parsing "zz": invalid syntax')


def test_render_templates_names_the_source_or_destination(tmp_path):
    task_dir = tmp_path / "web"
    (task_dir / "local").mkdir(parents=True)
    (task_dir / "local" / "in.tpl").write_text("ok\n{{ file \"local/nope\" }}")
    with pytest.raises(TemplateError) as info:
        render_templates([{"SourcePath": "local/in.tpl", "DestPath": "local/out"}], str(task_dir), {})
    assert str(info.value).startswith('template: local/in.tpl:2:3: executing "local/in.tpl" at <file "local/nope">: ')
    assert str(info.value).endswith("error calling file: file: open local/nope: no such file or directory")
    with pytest.raises(TemplateError) as info:
        render_templates([{"EmbeddedTmpl": "{{ .Missing }}", "DestPath": "local/out", "ErrMissingKey": True}],
                         str(task_dir), {})
    assert str(info.value) == 'template: local/out:1:3: executing "local/out" at <.Missing>: nil data; no entry for key "Missing"'
    assert render_templates([{"EmbeddedTmpl": "[{{ .Missing }}]", "DestPath": "local/out"}], str(task_dir), {}) == {}
    assert (task_dir / "local" / "out").read_text() == "[<no value>]"


def test_paths_perms_and_owner(tmp_path):
    task_dir = tmp_path / "alloc-id" / "web"
    (task_dir / "local").mkdir(parents=True)
    (tmp_path / "alloc-id" / "alloc").mkdir()
    env = {"NOMAD_ALLOC_DIR": str(tmp_path / "alloc-id" / "alloc")}
    specs = [{"EmbeddedTmpl": "shared", "DestPath": "${NOMAD_ALLOC_DIR}/shared.txt", "Perms": "0640", "Uid": 65534, "Gid": 65534},
             {"EmbeddedTmpl": "local", "DestPath": "/local/abs.txt"}]
    render_templates(specs, str(task_dir), env)
    shared = tmp_path / "alloc-id" / "alloc" / "shared.txt"
    assert shared.read_text() == "shared" and (task_dir / "local" / "abs.txt").read_text() == "local"
    st = os.stat(shared)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 65534, 65534)
    with pytest.raises(TemplateError, match=r'Failed to parse "9z" as octal'):
        render_templates([{"EmbeddedTmpl": "x", "DestPath": "local/p", "Perms": "9z"}], str(task_dir), env)
    with pytest.raises(TemplateError, match='template source path "../../../etc/passwd" escapes alloc directory'):
        render_templates([{"SourcePath": "../../../etc/passwd", "DestPath": "local/p"}], str(task_dir), env)


def test_env_templates_parse_like_envparse_and_join_the_env_after_rendering(tmp_path):
    specs = [{"EmbeddedTmpl": 'export A="x\\ty" # note\nB=\'lit $x\'\nC=plain # comment\n', "DestPath": "secrets/e",
              "Envvars": True},
             {"EmbeddedTmpl": '{{ env "A" }}|{{ env "C" }}', "DestPath": "local/uses-env"}]
    extra = render_templates(specs, str(tmp_path / "t"), {})
    assert extra == {"A": "x\ty", "B": "lit $x", "C": "plain"}
    assert (tmp_path / "t" / "local" / "uses-env").read_text() == "|"  # templates see the task env only
    with pytest.raises(TemplateError, match=r'error parsing env template "secrets/bad": line 2: expected KEY=VALUE'):
        render_templates([{"EmbeddedTmpl": "A=1\nnot an assignment\n", "DestPath": "secrets/bad", "Envvars": True}],
                         str(tmp_path / "t"), {})


def test_once_templates_are_not_watched(tmp_path):
    task_dir = tmp_path / "t"
    (task_dir / "local").mkdir(parents=True)
    (task_dir / "local" / "f").write_text("1")
    templates = TaskTemplates([{"EmbeddedTmpl": '{{ file "local/f" }}', "DestPath": "local/a"},
                               {"EmbeddedTmpl": '{{ file "local/f" }}', "DestPath": "local/b", "Once": True}], str(task_dir))
    templates.render_all({})
    (task_dir / "local" / "f").write_text("2")
    assert templates.changed_inputs({}) == [0]
    assert templates.rerender([0], {}) == [0] and (task_dir / "local" / "a").read_text() == "2"
    assert templates.changed_inputs({}) == [] and templates.rerender([0], {}) == []  # same output: no write, no action
