{{ with env "A" }}A={{ . }}{{ else }}no A{{ end }};{{ with env "B" }}B={{ . }}{{ else with env "C" }}C={{ . }}{{ else }}none{{ end }}
