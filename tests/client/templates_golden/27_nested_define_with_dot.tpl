{{ define "kv" }}{{ index . 0 }}={{ index . 1 }}{{ end }}{{ range split ";" (env "PAIRS") }}{{ template "kv" (split ":" .) }}
{{ end }}