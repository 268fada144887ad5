job "node-exporter" {
  type     = "system"
  priority = 90

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  update {
    max_parallel     = 2
    min_healthy_time = "15s"
    healthy_deadline = "2m"
    stagger          = "20s"
  }

  group "exporter" {
    network {
      port "metrics" {
        static = 9100
      }
    }

    task "exporter" {
      driver = "raw_exec"

      config {
        command = "/opt/node_exporter/node_exporter"
        args    = ["--web.listen-address=:${NOMAD_PORT_metrics}"]
      }

      service {
        name = "node-exporter"
        port = "metrics"
      }
    }
  }
}
