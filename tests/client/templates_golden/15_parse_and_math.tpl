{{ parseInt "42" | add 1 }} {{ parseFloat "2.5" | multiply 2 }} {{ parseBool "true" }} {{ parseInt "-7" | subtract 3 }} {{ divide 4 (parseInt "10") }} {{ modulo 4 (parseInt "10") }}
