job "log-agent" {
  type        = "system"
  datacenters = ["dc1", "dc2"]

  constraint {
    attribute = "${node.class}"
    operator  = "!="
    value     = "storage"
  }

  group "agent" {
    constraint {
      attribute = "${attr.os.name}"
      operator  = "regexp"
      value     = "ubuntu|debian"
    }

    task "vector" {
      driver = "docker"

      config {
        image = "timberio/vector:0.38.0-alpine"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
