{{ $total := 0 }}{{ range loop 1 5 }}{{ $total = add . $total }}{{ end }}total={{ $total }}
