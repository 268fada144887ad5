job "business-hours" {
  group "g" {
    task "worker" {
      driver = "docker"

      schedule {
        cron {
          start    = "0 9 * * MON-FRI"
          end      = "0 17"
          timezone = "America/New_York"
        }
      }

      config {
        image = "example/worker:1"
      }
    }
  }
}
