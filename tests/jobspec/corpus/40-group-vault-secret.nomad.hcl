job "group-level" {
  group "g" {
    vault {
      role = "group-role"
    }

    secret "cfg" {
      provider = "nomad"
      path     = "group/cfg"
    }

    task "a" {
      driver = "docker"

      config {
        image = "busybox:1"
      }
    }

    task "b" {
      driver = "docker"

      vault {
        role = "own-role"
      }

      config {
        image = "busybox:1"
      }
    }
  }
}
