{{ $n := parseInt (env "N") }}{{ if lt $n 0 }}negative{{ else if eq $n 0 }}zero{{ else if lt $n 10 }}small{{ else }}large{{ end }}
