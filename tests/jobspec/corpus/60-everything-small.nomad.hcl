job "kitchen-sink" {
  type     = "service"
  priority = 75

  reschedule {
    attempts       = 3
    interval       = "1h"
    delay          = "10s"
    delay_function = "constant"
    max_delay      = "1m"
    unlimited      = false
  }

  group "g" {
    count = 2

    update {
      max_parallel      = 1
      health_check      = "task_states"
      min_healthy_time  = "5s"
      healthy_deadline  = "1m"
      progress_deadline = "5m"
    }

    network {
      port "http" {}
    }

    service {
      name = "sink"
      port = "http"

      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "1s"
        expose   = false
      }
    }

    task "t" {
      driver = "docker"

      config {
        image = "example/sink:1"
        ports = ["http"]
      }

      service {
        name         = "sink-task"
        port         = "http"
        address_mode = "driver"
      }
    }
  }
}
