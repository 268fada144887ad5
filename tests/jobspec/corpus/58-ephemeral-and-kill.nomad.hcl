job "graceful" {
  group "g" {
    shutdown_delay = "10s"

    ephemeral_disk {
      size    = 2048
      migrate = true
    }

    task "web" {
      driver         = "docker"
      kill_timeout   = "45s"
      kill_signal    = "SIGTERM"
      shutdown_delay = "3s"

      config {
        image = "nginx:1.27"
      }
    }
  }
}
