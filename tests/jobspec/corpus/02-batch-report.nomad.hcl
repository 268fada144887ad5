job "nightly-report" {
  type        = "batch"
  datacenters = ["dc1"]

  periodic {
    crons            = ["0 2 * * *", "30 14 * * MON-FRI"]
    prohibit_overlap = true
    time_zone        = "Europe/Berlin"
    enabled          = true
  }

  group "report" {
    max_run_duration = "2h"

    restart {
      attempts = 1
      interval = "1h"
      delay    = "30s"
      mode     = "fail"
    }

    reschedule {
      attempts  = 2
      interval  = "6h"
      delay     = "1m"
      unlimited = false
    }

    task "generate" {
      driver = "exec"

      config {
        command = "/usr/local/bin/report"
        args    = ["--date", "yesterday"]
      }

      resources {
        cpu    = 1000
        memory = 2048
      }
    }
  }
}
