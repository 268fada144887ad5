job "shop" {
  datacenters = ["*"]
  node_pool   = "all"

  update {
    max_parallel = 1
    auto_revert  = true
  }

  group "frontend" {
    count = 2

    network {
      port "http" {
        to = 3000
      }
    }

    service {
      name     = "shop-frontend"
      port     = "http"
      provider = "nomad"
    }

    task "web" {
      driver = "docker"

      config {
        image = "example/shop-web:3"
        ports = ["http"]
      }

      env {
        API_URL = "http://${NOMAD_UPSTREAM_ADDR_api}"
      }
    }
  }

  group "backend" {
    count = 3

    network {
      port "api" {}
    }

    service {
      name     = "shop-api"
      port     = "api"
      provider = "nomad"
    }

    task "api" {
      driver = "docker"

      config {
        image = "example/shop-api:3"
        ports = ["api"]
      }
    }
  }

  group "worker" {
    task "queue" {
      driver = "docker"

      config {
        image = "example/shop-worker:3"
      }
    }
  }
}
