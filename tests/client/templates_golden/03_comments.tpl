x{{/* a comment */}}y
{{- /* trimmed comment */ -}}
z
