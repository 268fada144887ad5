{{ "  padded  " | trimSpace }}|{{ "hello world" | toTitle }}|{{ "a.b.c" | replaceAll "." "/" }}|{{ "MiXeD" | toLower }}|{{ join "+" (split "," "1,2,3") }}|{{ "v1.2" | trimPrefix "v" }}
