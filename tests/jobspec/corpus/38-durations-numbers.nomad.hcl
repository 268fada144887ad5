job "durations" {
  group "g" {
    shutdown_delay = 5000000000

    restart {
      interval = "1h30m"
      delay    = "1.5s"
    }

    task "t" {
      driver         = "docker"
      kill_timeout   = "2m"
      shutdown_delay = "250ms"

      config {
        image = "busybox:1"
      }

      template {
        data        = "x"
        destination = "local/x"
        splay       = 3000000000
      }
    }
  }
}
