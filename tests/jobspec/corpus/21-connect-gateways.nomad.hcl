job "gateways" {
  group "ingress" {
    network {
      mode = "bridge"

      port "inbound" {
        static = 8080
      }
    }

    service {
      name = "ingress"
      port = "inbound"

      connect {
        gateway {
          proxy {
            connect_timeout                     = "5s"
            envoy_gateway_bind_tagged_addresses = false
            envoy_gateway_no_default_bind       = true
            envoy_dns_discovery_type            = "LOGICAL_DNS"
            config                              = { envoy_stats_flush_interval = "10s" }

            envoy_gateway_bind_addresses "lan" {
              address = "0.0.0.0"
              port    = 8080
            }
          }

          ingress {
            tls {
              enabled         = true
              tls_min_version = "TLSv1_2"
              tls_max_version = "TLSv1_3"
              cipher_suites   = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
            }

            listener {
              port     = 8080
              protocol = "http"

              service {
                name                    = "web"
                hosts                   = ["web.example.com"]
                max_connections         = 100
                max_pending_requests    = 50
                max_concurrent_requests = 25

                tls {
                  sds {
                    cluster_name  = "sds-cluster"
                    cert_resource = "web-cert"
                  }
                }

                request_headers {
                  add = {
                    X-Gateway = "ingress"
                  }
                  set = {
                    X-Env = "prod"
                  }
                }

                response_headers {
                  remove = ["X-Powered-By"]
                }
              }
            }
          }
        }
      }
    }
  }

  group "terminating" {
    network {
      mode = "bridge"
    }

    service {
      name = "terminating"

      connect {
        gateway {
          terminating {
            service {
              name      = "legacy-db"
              ca_file   = "/etc/ssl/ca.pem"
              cert_file = "/etc/ssl/cert.pem"
              key_file  = "/etc/ssl/key.pem"
              sni       = "db.internal"
            }
          }
        }
      }
    }
  }

  group "mesh" {
    network {
      mode = "bridge"

      port "mesh_wan" {}
    }

    service {
      name = "mesh-gateway"
      port = "mesh_wan"

      connect {
        gateway {
          mesh {}
        }
      }
    }
  }

  group "native" {
    service {
      name = "native"
      task = "app"

      connect {
        native = true
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/native:1"
      }
    }
  }
}
