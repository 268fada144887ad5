{{ range $k, $v := parseJSON (env "CFG") }}{{ $k }}={{ $v }}
{{ end }}