ok
{{ range service "web" }}{{ .Address }}{{ end }}
