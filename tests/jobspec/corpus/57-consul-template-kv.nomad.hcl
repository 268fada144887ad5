job "kv-config" {
  group "g" {
    task "t" {
      driver = "docker"

      config {
        image = "example/app:1"
      }

      template {
        destination = "local/config.json"
        change_mode = "restart"
        data        = <<-EOT
          {
            "db": "{{ key "app/db_url" }}",
            "features": [{{ range $i, $f := tree "app/features" }}{{ if $i }},{{ end }}"{{ $f.Key }}"{{ end }}]
          }
        EOT
      }

      template {
        destination = "secrets/token"
        data        = "{{ with secret \"kv/data/app\" }}{{ .Data.data.token }}{{ end }}"
        perms       = "0400"
      }
    }
  }
}
