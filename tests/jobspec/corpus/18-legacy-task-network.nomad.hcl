# Deprecated forms Nomad still accepts: a network inside task resources, mbits,
# reserved_ports blocks, disk and iops in resources.
job "legacy" {
  group "g" {
    task "app" {
      driver = "docker"

      config {
        image = "example/legacy:1"
        ports = ["web"]
      }

      resources {
        cpu    = 250
        memory = 256
        disk   = 100
        iops   = 10

        network {
          mbits  = 10
          device = "eth0"
          cidr   = "10.0.0.0/8"
          ip     = "10.0.0.5"

          port "web" {}

          reserved_ports "ssh" {
            static = 2222
          }
        }
      }
    }
  }
}
