job "maps" {
  meta = {
    owner         = "platform"
    "cost.center" = "42"
  }

  group "g" {
    meta {
      tier = "backend"
    }

    task "block-form" {
      driver = "docker"

      env {
        PATH_EXTRA = "/opt/bin"
        NUMBER     = 3
        FLAG       = true
      }

      meta {
        task_meta = "yes"
      }

      config {
        image = "example/a:1"
      }
    }

    task "map-form" {
      driver = "docker"
      env    = { PATH_EXTRA = "/opt/bin", "dotted.key" = "ok" }
      meta   = { task_meta = "no" }

      config {
        image = "example/b:1"
      }
    }
  }
}
