{{ range split "," (env "EMPTY") }}item {{ . }}{{ else }}no items{{ end }}
