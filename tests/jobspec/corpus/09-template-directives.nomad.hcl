variable "servers" {
  default = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
}

variable "debug" {
  default = true
}

job "directives" {
  group "proxy" {
    task "haproxy" {
      driver = "docker"

      config {
        image = "haproxy:2.9"
      }

      template {
        destination = "local/haproxy.cfg"
        data        = <<-EOT
        global
        %{ if var.debug ~}
          log stdout local0 debug
        %{ else ~}
          log stdout local0 info
        %{ endif ~}
        backend app
        %{ for i, addr in var.servers ~}
          server s${i} ${addr}:8080 check
        %{ endfor ~}
        # rendered for {{ env "NOMAD_ALLOC_ID" }} on ${node.unique.name}
        EOT
      }

      env {
        MODE    = "%{ if var.debug }debug%{ else }release%{ endif }"
        SERVERS = "%{ for s in var.servers }${s};%{ endfor }"
      }
    }
  }
}
