{{ or (env "UNSET") "fallback" }} {{ and (env "NAME") "both" }} {{ not (env "UNSET") }} {{ if and (env "NAME") (eq (env "NAME") "world") }}ok{{ end }}
