# Values for count, tags and enabled come from -var in the test (see regen_corpus.py).
variable "count" {
  type = number
}

variable "tags" {
  type    = list(string)
  default = []
}

variable "enabled" {
  type    = bool
  default = true
}

job "cli-vars" {
  group "g" {
    count = var.count

    service {
      name = "cli-vars"
      tags = var.tags
    }

    task "t" {
      driver = "docker"

      config {
        image = "busybox:1"
      }

      env {
        ENABLED = var.enabled
      }
    }
  }
}
