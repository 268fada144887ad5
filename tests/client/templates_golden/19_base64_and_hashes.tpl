{{ base64Encode "hello" }} {{ base64Decode "aGVsbG8=" }} {{ sha256Hex "abc" }} {{ md5sum "abc" }}
