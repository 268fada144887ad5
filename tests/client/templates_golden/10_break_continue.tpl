{{ range loop 10 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if gt . 5 }}{{ break }}{{ end }}{{ . }} {{ end }}
