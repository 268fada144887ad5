job "docker-config" {
  group "g" {
    network {
      port "http" {
        to = 8080
      }
    }

    task "app" {
      driver = "docker"

      config {
        image       = "example/app:1.0"
        force_pull  = true
        entrypoint  = ["/bin/sh", "-c"]
        command     = "exec app"
        args        = ["--listen", ":8080"]
        ports       = ["http"]
        hostname    = "app"
        privileged  = false
        cap_add     = ["NET_ADMIN"]
        cap_drop    = ["ALL"]
        labels      = { team = "a" }
        dns_servers = ["10.0.0.2"]
        work_dir    = "/app"

        auth {
          username = "robot"
          password = "secret"
        }

        logging {
          type = "journald"
          config {
            tag = "app"
          }
        }

        mount {
          type     = "bind"
          source   = "local/data"
          target   = "/data"
          readonly = false
        }

        mount {
          type   = "tmpfs"
          target = "/scratch"
        }

        ulimit {
          nofile = "65536:65536"
        }
      }
    }
  }
}
