{{ range $i, $host := split "," (env "HOSTS") }}{{ if $i }}
{{ end }}server {{ $i }} {{ $host }}:80{{ end }}
