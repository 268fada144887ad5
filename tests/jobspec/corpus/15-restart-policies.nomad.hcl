job "restarts" {
  group "g" {
    restart {
      attempts         = 5
      interval         = "10m"
      delay            = "20s"
      mode             = "delay"
      render_templates = true
    }

    task "a" {
      driver = "docker"

      restart {
        attempts = 0
        mode     = "fail"
      }

      config {
        image = "busybox:1"
      }
    }

    task "b" {
      driver = "docker"

      config {
        image = "busybox:1"
      }
    }
  }
}
