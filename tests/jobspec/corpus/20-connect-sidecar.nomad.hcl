job "mesh" {
  group "api" {
    network {
      mode = "bridge"

      port "expose" {
        to = -1
      }
    }

    consul {
      namespace = "apps"
      cluster   = "default"
      partition = "default"
    }

    service {
      name = "mesh-api"
      port = "9001"

      connect {
        sidecar_service {
          tags                      = ["mesh"]
          port                      = "20000"
          disable_default_tcp_check = true
          meta                      = { sidecar = "true" }

          proxy {
            local_service_address = "127.0.0.1"
            local_service_port    = 9001
            config                = { protocol = "http" }

            upstreams {
              destination_name      = "db"
              destination_namespace = "data"
              destination_partition = "default"
              destination_peer      = "other-cluster"
              destination_type      = "service"
              local_bind_port       = 5432
              local_bind_address    = "127.0.0.1"
              datacenter            = "dc2"
              config                = { connect_timeout_ms = 5000 }

              mesh_gateway {
                mode = "local"
              }
            }

            upstreams {
              destination_name       = "cache"
              local_bind_socket_path = "/run/cache.sock"
              local_bind_socket_mode = "0700"
            }

            expose {
              path {
                path            = "/health"
                protocol        = "http"
                local_path_port = 9001
                listener_port   = "expose"
              }
            }

            transparent_proxy {
              uid                    = "101"
              outbound_port          = 15001
              exclude_inbound_ports  = ["9000"]
              exclude_outbound_ports = [53]
              exclude_outbound_cidrs = ["10.0.0.0/8"]
              exclude_uids           = ["0"]
              no_dns                 = true
            }
          }
        }

        sidecar_task {
          name           = "envoy"
          driver         = "docker"
          user           = "envoy"
          kill_timeout   = "10s"
          shutdown_delay = "5s"
          kill_signal    = "SIGTERM"

          config {
            image = "envoyproxy/envoy:v1.29"
          }

          env {
            ENVOY_LOG = "debug"
          }

          meta {
            role = "proxy"
          }

          resources {
            cpu    = 100
            memory = 64
          }

          logs {
            max_files     = 2
            max_file_size = 5
          }

          volume_mount {
            volume      = "certs"
            destination = "/certs"
          }

          identity {
            name = "envoy"
            aud  = ["consul"]
          }
        }
      }
    }

    volume "certs" {
      type   = "host"
      source = "certs"
    }

    task "api" {
      driver = "docker"

      config {
        image = "example/api:1"
      }
    }
  }
}
