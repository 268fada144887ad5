Hello {{ env "NAME" }}!
Missing: [{{ env "NOPE" }}]
