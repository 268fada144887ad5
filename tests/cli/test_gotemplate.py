"""The Go text/template renderer used by -t."""

import pytest

from yurt.cli.gotemplate import TemplateError, render

DATA = {
    "ID": "web",
    "Priority": 50,
    "Stop": False,
    "Meta": {"b": "2", "a": "1"},
    "TaskGroups": [{"Name": "api", "Count": 3, "Tasks": [{"Name": "srv"}]}, {"Name": "db", "Count": 1, "Tasks": []}],
    "Nothing": None,
}


@pytest.mark.parametrize("template, expected", [
    ("{{.ID}}", "web"),
    ("{{ .ID }}-{{.Priority}}-{{.Stop}}", "web-50-false"),
    ("{{(index .TaskGroups 0).Name}}", "api"),
    ("{{index .Meta \"a\"}}", "1"),
    ("{{.Meta}}", "map[a:1 b:2]"),
    ("{{.Missing}}", "<no value>"),
    ("{{len .TaskGroups}}", "2"),
    ("{{range .TaskGroups}}{{.Name}}:{{.Count}},{{end}}", "api:3,db:1,"),
    ("{{range $i, $g := .TaskGroups}}{{$i}}={{$g.Name}} {{end}}", "0=api 1=db "),
    ("{{range $k, $v := .Meta}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{if .Stop}}stopped{{else if gt .Priority 40}}high{{else}}low{{end}}", "high"),
    ("{{if and .ID (not .Stop)}}yes{{end}}", "yes"),
    ("{{if eq .ID \"db\" \"web\"}}match{{end}}", "match"),
    ("{{with .Meta}}{{.b}}{{end}}{{with .Nothing}}x{{else}}none{{end}}", "2none"),
    ("{{printf \"%s has %d groups\" .ID (len .TaskGroups)}}", "web has 2 groups"),
    ("{{printf \"%-5s|%5d|%q|%v|%t\" .ID 7 .ID .Priority .Stop}}", "web  |    7|\"web\"|50|false"),
    ("{{.ID | printf \"<%s>\"}}", "<web>"),
    ("{{$x := .ID}}{{$x}}{{$.Priority}}", "web50"),
    ("a\n  {{- .ID -}}  \nb", "awebb"),
    ("{{/* a comment */}}ok", "ok"),
    ("{{json .Meta}}", "{\"b\":\"2\",\"a\":\"1\"}"),
    ("{{sprig_toJson .Meta | len}}", "17"),
    ("{{range .TaskGroups}}{{if eq .Name \"db\"}}{{break}}{{end}}{{.Name}}{{end}}", "api"),
    ("{{print .ID 1 2 \"x\"}}", "web1 2x"),
    ("{{range 3}}{{.}}{{end}}", "012"),
])
def test_render(template, expected):
    assert render(template, DATA) == expected


@pytest.mark.parametrize("template, message", [
    ("{{.ID | nosuch}}", 'function "nosuch" not defined'),
    ("{{if .ID}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{$y}}", "undefined variable \"$y\""),
    ("{{.ID.Sub}}", "can't evaluate field Sub in type string"),
])
def test_render_errors(template, message):
    with pytest.raises(TemplateError, match=message.replace("$", r"\$")):
        render(template, DATA)
