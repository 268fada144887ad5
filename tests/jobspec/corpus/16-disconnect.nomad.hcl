job "edge" {
  group "sensor" {
    prevent_reschedule_on_lost = true

    disconnect {
      lost_after = "1h"
      replace    = false
      reconcile  = "keep_original"
    }

    task "collector" {
      driver = "exec"

      config {
        command = "/usr/bin/collector"
      }
    }
  }

  group "legacy" {
    max_client_disconnect = "30m"

    disconnect {
      stop_on_client_after = "10m"
      reconcile            = "longest_running"
    }

    task "collector" {
      driver = "exec"

      config {
        command = "/usr/bin/collector"
      }
    }
  }

  group "older" {
    stop_after_client_disconnect = "5m"

    task "collector" {
      driver = "exec"

      config {
        command = "/usr/bin/collector"
      }
    }
  }
}
