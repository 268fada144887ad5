variable "region" {
  type    = string
  default = "eu-west"

  validation {
    condition     = contains(["eu-west", "us-east"], var.region)
    error_message = "Unsupported region."
  }

  validation {
    condition     = length(var.region) > 3
    error_message = "Region name too short."
  }
}

variable "ports" {
  type    = map(number)
  default = { http = 8080, grpc = 9090 }
}

job "validated" {
  region = var.region

  group "g" {
    network {
      port "http" {
        to = var.ports["http"]
      }

      port "grpc" {
        to = var.ports.grpc
      }
    }

    task "t" {
      driver = "docker"

      config {
        image = "example/app:1"
        ports = keys(var.ports)
      }
    }
  }
}
