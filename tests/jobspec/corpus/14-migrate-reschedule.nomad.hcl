job "stateful" {
  migrate {
    max_parallel     = 1
    health_check     = "task_states"
    min_healthy_time = "20s"
    healthy_deadline = "3m"
  }

  reschedule {
    delay          = "15s"
    delay_function = "fibonacci"
    max_delay      = "30m"
    unlimited      = true
  }

  group "db" {
    migrate {
      max_parallel = 2
    }

    reschedule {
      delay_function = "exponential"
      max_delay      = "2h"
    }

    task "postgres" {
      driver = "docker"

      config {
        image = "postgres:16"
      }
    }
  }
}
