variable "ports" {
  default = [
    { name = "http", to = 8080 },
    { name = "metrics", to = 9090 },
  ]
}

locals {
  env_vars = { LOG_LEVEL = "info", REGION = "eu" }
}

job "dynamic" {
  group "app" {
    network {
      dynamic "port" {
        for_each = var.ports
        labels   = [port.value.name]

        content {
          to = port.value.to
        }
      }
    }

    dynamic "service" {
      for_each = var.ports
      iterator = svc

      content {
        name = "app-${svc.value.name}"
        port = svc.value.name
        tags = ["index-${svc.key}"]
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/app:1"
        ports = [for p in var.ports : p.name]
      }

      env = local.env_vars

      dynamic "template" {
        for_each = ["a.conf", "b.conf"]

        content {
          data        = "name = ${template.value}"
          destination = "local/${template.value}"
        }
      }
    }
  }
}
