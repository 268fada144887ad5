{{ range file "local/peers.txt" | trimSpace | split "\n" }}peer {{ . }}
{{ end }}