{{ env "NAME" | toUpper | printf "<%s>" }} {{ (printf "%s-%s" "a" "b") | len }} {{ len (split "," "x,y,z") }}
