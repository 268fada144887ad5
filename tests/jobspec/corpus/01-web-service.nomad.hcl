# A web service behind a Nomad-native service with HTTP and TCP checks.
job "web" {
  region      = "eu-west"
  namespace   = "apps"
  type        = "service"
  priority    = 60
  datacenters = ["eu-west-1a", "eu-west-1b"]
  node_pool   = "frontend"

  group "nginx" {
    count = 3

    network {
      mode = "bridge"

      port "http" {
        to = 80
      }
    }

    service {
      name         = "web"
      provider     = "nomad"
      port         = "http"
      tags         = ["public", "v2"]
      address_mode = "auto"

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        method   = "GET"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        type     = "tcp"
        port     = "http"
        interval = "30s"
        timeout  = "5s"
      }
    }

    task "nginx" {
      driver = "docker"

      config {
        image = "nginx:1.27"
        ports = ["http"]
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
