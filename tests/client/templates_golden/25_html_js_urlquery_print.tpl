{{ html "<b>\"Tom\" & 'Jerry'</b>" }}
{{ js "it's \"quoted\" <tag>" }}
{{ urlquery "a b&c=d/é" }}
{{ print 1 2 "x" 3 true }}
{{ println "a" 1 }}
