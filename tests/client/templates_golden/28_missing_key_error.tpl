{{ .Foo }}
