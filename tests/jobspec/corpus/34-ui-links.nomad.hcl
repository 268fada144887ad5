job "documented" {
  ui {
    description = "The **payments** service. See the runbook before restarting."

    link {
      label = "Runbook"
      url   = "https://wiki.example.com/payments"
    }

    link {
      label = "Dashboard"
      url   = "https://grafana.example.com/d/payments"
    }
  }

  group "g" {
    task "payments" {
      driver = "docker"

      config {
        image = "example/payments:1"
      }
    }
  }
}
