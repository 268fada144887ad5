# Two copies of a small web server, each on a dynamic port.
#   yurt job run examples/web.nomad.hcl
job "web" {
  type = "service"

  group "web" {
    count = 2

    network {
      port "http" {}
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"
    }

    task "server" {
      driver = "raw_exec"

      config {
        command = "python3"
        args    = ["-m", "http.server", "${NOMAD_PORT_http}", "--bind", "0.0.0.0"]
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
