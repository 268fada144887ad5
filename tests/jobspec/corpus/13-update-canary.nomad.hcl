job "api" {
  update {
    max_parallel      = 2
    health_check      = "checks"
    min_healthy_time  = "30s"
    healthy_deadline  = "5m"
    progress_deadline = "15m"
    auto_revert       = true
  }

  group "api" {
    count = 6

    update {
      canary       = 2
      auto_promote = true
      max_parallel = 3
    }

    network {
      port "http" {}
    }

    service {
      name        = "api"
      port        = "http"
      tags        = ["live"]
      canary_tags = ["canary"]

      canary_meta {
        version = "next"
      }

      check {
        type     = "http"
        path     = "/ready"
        interval = "5s"
        timeout  = "1s"
      }
    }

    task "api" {
      driver = "docker"

      config {
        image = "example/api:2"
        ports = ["http"]
      }
    }
  }
}
