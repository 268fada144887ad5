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


# --- the shared engine (yurt.gotemplate) beyond what -t needs ---------------------------------------

from yurt.gotemplate import Template  # noqa: E402
from yurt.gotemplate import TemplateError as EngineError  # noqa: E402


@pytest.mark.parametrize("template, expected", [
    ('{{define "row"}}<{{.}}>{{end}}{{range .L}}{{template "row" .}}{{end}}', "<a><b>"),
    ('{{block "title" .T}}[{{.}}]{{end}}', "[x]"),
    ("{{with .Nothing}}a{{else with .T}}b={{.}}{{else}}c{{end}}", "b=x"),
    ("{{$s := 0}}{{range .N}}{{$s = .}}{{end}}{{$s}}", "3"),
    ("{{range $i, $v := .L}}{{if eq $i 1}}{{continue}}{{end}}{{$v}}{{end}}", "a"),
    ("{{or .T (index .Nothing 1)}}", "x"),  # short-circuit: index is never called
    ("{{and .Nothing (index .Nothing 1)}}", "<no value>"),
    ("{{printf \"%T %T %T %T\" 1 1.5 \"s\" .L}}", "int float64 string []string"),
    ("{{ 1e3 }} {{ 0x10 }} {{ 'x' }} {{ -2.5 }}", "1000 16 120 -2.5"),
    ("{{ slice .L 1 }} {{ len \"héllo\" }}", "[b] 6"),
    ("{{ html \"<&>\" }} {{ urlquery \"a b\" }} {{ js \"</\" }}", "&lt;&amp;&gt; a+b \\u003C/"),
    ("{{ eq .Nothing .T }}{{ eq .T \"x\" \"y\" }}", "falsetrue"),
])
def test_engine(template, expected):
    data = {"L": ["a", "b"], "T": "x", "N": 4, "Nothing": None}
    assert Template("t", template).execute(data) == expected


@pytest.mark.parametrize("template, message", [
    ("a\nb\n{{ if }}", "template: t:3: missing value for if"),
    ("{{ break }}", "template: t:1: {{break}} outside {{range}}"),
    ("{{ $x = 1 }}", 'template: t:1: undefined variable "$x"'),
    ('{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}', 'template: t:1: template: multiple definition of template "a"'),
    ("{{ 1 | 2 }}", "template: t:1: non executable command in pipeline stage 2"),
    ("{{ \"a\n }}", "template: t:1: unterminated quoted string"),
    ("{{ .T.Sub }}", 'template: t:1:3: executing "t" at <.T.Sub>: can\'t evaluate field Sub in type string'),
    ("{{ .Nothing.Sub }}", 'template: t:1:3: executing "t" at <.Nothing.Sub>: nil pointer evaluating interface {}.Sub'),
    ('{{ template "x" }}', 'template: t:1:12: executing "t" at <{{template "x"}}>: no template "x" associated with template "t"'),
    ("{{ lt 1 \"a\" }}", 'template: t:1:3: executing "t" at <lt 1 "a">: error calling lt: incompatible types for comparison'),
    ("{{ range .T }}{{ end }}", 'template: t:1:9: executing "t" at <{{range .T}}{{end}}>: range can\'t iterate over x'),
    ('{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}', "exceeded maximum template depth (100)"),
])
def test_engine_errors(template, message):
    with pytest.raises(EngineError) as info:
        Template("t", template).execute({"T": "x", "Nothing": None})
    assert message in str(info.value)


def test_engine_custom_delimiters_and_trim():
    tmpl = Template("t", "{{ .A }} <% .A %>\n  <%- .A -%>  \n<%/* c */%>", left="<%", right="%>")
    assert tmpl.execute({"A": 1}) == "{{ .A }} 11"
