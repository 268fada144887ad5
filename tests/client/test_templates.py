import os

import pytest

from yurt.client.templates import TemplateError, parse_env_file, render, render_templates


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
