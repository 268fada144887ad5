variable "env" {
  default = "prod"
}

variable "backends" {
  default = [
    { name = "a", weight = 1 },
    { name = "b", weight = 3 },
  ]
}

locals {
  is_prod  = var.env == "prod"
  count    = local.is_prod ? 3 : 1
  names    = var.backends[*].name
  weights  = { for b in var.backends : b.name => b.weight }
  heavy    = [for b in var.backends : b.name if b.weight > 2]
  fallback = try(var.backends[5].name, "none")
}

job "expressions" {
  group "g" {
    count = local.count

    meta {
      names    = join(",", local.names)
      weights  = jsonencode(local.weights)
      heavy    = join(",", local.heavy)
      fallback = local.fallback
      math     = 2 * (3 + 4) - 10 / 5 % 3
      compare  = 3 >= 2 && !(1 == 2) || false
      negative = -5
      float    = 2.5
      escaped  = "tab\there \"quoted\" \\ back $${literal}"
      nested   = "${upper("x")}-${lower("Y")}"
    }

    task "t" {
      driver = "docker"

      config {
        image = "busybox:1"
      }
    }
  }
}
