{{ printf "%05.1f|%-6s|%6s|%x|%X|%o|%q|%v|%t|%c|%%" 3.14159 "ab" "cd" 255 255 8 "q\"s" (split "," "a,b") true 65 }}
