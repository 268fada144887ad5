job "lifecycle" {
  group "g" {
    task "init-db" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image = "example/migrate:1"
      }
    }

    task "log-shipper" {
      driver = "docker"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "example/shipper:1"
      }
    }

    task "cleanup" {
      driver = "docker"

      lifecycle {
        hook = "poststop"
      }

      config {
        image = "example/cleanup:1"
      }
    }

    task "main" {
      driver = "docker"
      leader = true

      config {
        image = "example/main:1"
      }
    }
  }
}
