{{ define "entry" }}[{{ .name }}:{{ .port }}]{{ end -}}
{{ range parseJSON (env "SVCS") }}{{ template "entry" . }}{{ end }}
{{ block "footer" "end" }}-- {{ . }} --{{ end }}
