{{ $c := parseJSON `{"b": [1, 2], "a": {"x": "<y>"}}` }}{{ toJSON $c }}
{{ toJSONPretty $c }}
{{ toYAML $c }}
