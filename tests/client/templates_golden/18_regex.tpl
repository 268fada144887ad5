{{ "app-v1.2.3" | regexMatch `v\d+\.\d+` }} {{ "2024-03-05" | regexReplaceAll `(\d+)-(\d+)-(\d+)` "$3/$2/$1" }} {{ regexReplaceAll "[aeiou]" "" "education" }}
