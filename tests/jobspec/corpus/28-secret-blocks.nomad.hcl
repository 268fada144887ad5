job "with-secrets" {
  secret "shared" {
    provider = "nomad"
    path     = "shared/config"
  }

  group "g" {
    task "app" {
      driver = "docker"

      secret "db" {
        provider = "vault"
        path     = "kv/data/db"

        config {
          engine = "kv_v2"
        }

        env {
          DB_PASSWORD = "${secret.db.password}"
        }
      }

      config {
        image = "example/app:1"
      }

      env {
        SHARED = "${secret.shared.value}"
      }
    }
  }
}
