{{ $l := split "," "a,b,c,d" }}{{ index $l 1 }} {{ slice $l 1 3 }} {{ len $l }} {{ index (parseJSON `{"k": {"n": "v"}}`) "k" "n" }} {{ slice "abcdef" 2 }}
