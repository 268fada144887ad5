variable "image" {
  type        = string
  description = "Container image to run"
  default     = "redis:7.2"
}

variable "replicas" {
  type    = number
  default = 2

  validation {
    condition     = var.replicas > 0 && var.replicas < 10
    error_message = "Replicas must be between 1 and 9."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["dc1", "dc2"]
}

variable "labels" {
  type      = map(string)
  default   = { team = "cache", tier = "backend" }
  sensitive = false
}

variables {
  memory_mb = 512
}

locals {
  name       = "redis-${var.replicas}"
  all_labels = merge(var.labels, { managed_by = "yurt" })
}

job "cache" {
  datacenters = var.datacenters
  meta        = local.all_labels

  group "redis" {
    count = var.replicas

    task "redis" {
      driver = "docker"

      config {
        image = var.image
      }

      env {
        REDIS_NAME = local.name
      }

      resources {
        memory = var.memory_mb
      }
    }
  }
}
