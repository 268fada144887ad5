{{ define "upstream" }}server {{ . }};{{ end -}}
{{ range split "," (env "UPSTREAMS") }}{{ executeTemplate "upstream" . | toUpper }}
{{ end }}
