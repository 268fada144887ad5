line one
{{ if }}
