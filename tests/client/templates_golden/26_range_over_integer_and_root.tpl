{{ $name := env "NAME" }}{{ range $i := 3 }}{{ $i }}{{ $name }} {{ end }}
