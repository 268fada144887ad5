variable "admin_password" {
  type      = string
  default   = "changeme"
  sensitive = true
}

job "grafana" {
  group "grafana" {
    network {
      port "http" {
        to = 3000
      }
    }

    volume "grafana" {
      type   = "host"
      source = "grafana"
    }

    task "grafana" {
      driver = "docker"
      user   = "472"

      volume_mount {
        volume      = "grafana"
        destination = "/var/lib/grafana"
      }

      env {
        GF_SECURITY_ADMIN_PASSWORD = var.admin_password
        GF_SERVER_HTTP_PORT        = "3000"
      }

      config {
        image = "grafana/grafana:11.0.0"
        ports = ["http"]
      }

      resources {
        cpu    = 200
        memory = 256
      }

      service {
        name = "grafana"
        port = "http"
        tags = ["urlprefix-/grafana"]

        check {
          type     = "http"
          path     = "/api/health"
          interval = "10s"
          timeout  = "2s"
        }
      }
    }
  }
}
