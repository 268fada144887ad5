{{ if true }}
yes
