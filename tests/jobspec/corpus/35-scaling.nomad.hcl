job "autoscaled" {
  group "web" {
    count = 2

    scaling {
      enabled = true
      min     = 1
      max     = 20
      type    = "horizontal"

      policy {
        evaluation_interval = "10s"
        cooldown            = "1m"

        check "cpu" {
          source = "nomad-apm"
          query  = "avg_cpu"

          strategy "target-value" {
            target = 70
          }
        }
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = "example/web:1"
      }

      scaling "cpu" {
        enabled = true
        min     = 100
        max     = 1000

        policy {
          cooldown = "5m"
        }
      }

      scaling "mem" {
        min = 128
        max = 2048
      }
    }
  }
}
