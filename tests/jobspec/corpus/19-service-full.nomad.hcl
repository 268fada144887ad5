job "svc-full" {
  group "g" {
    update {
      canary = 1
    }

    network {
      port "http" {}
      port "grpc" {}
    }

    service {
      name                = "full"
      provider            = "consul"
      cluster             = "default"
      port                = "http"
      tags                = ["a", "b"]
      canary_tags         = ["c"]
      enable_tag_override = true
      address             = "10.1.2.3"
      address_mode        = "host"
      task                = "app"
      on_update           = "require_healthy"
      kind                = "connect-native"
      meta                = { version = "1" }
      canary_meta         = { version = "2" }
      tagged_addresses    = { wan = "203.0.113.5" }

      weights {
        passing = 10
        warning = 1
      }

      check_restart {
        limit           = 3
        grace           = "90s"
        ignore_warnings = true
      }

      identity {
        name          = "consul-service"
        aud           = ["consul.io"]
        ttl           = "1h"
        service_name  = "full"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      check {
        name                     = "http-full"
        type                     = "http"
        protocol                 = "https"
        port                     = "http"
        path                     = "/health"
        method                   = "POST"
        body                     = "{\"ping\":true}"
        interval                 = "15s"
        timeout                  = "3s"
        initial_status           = "warning"
        notes                    = "checks the health endpoint"
        tls_server_name          = "full.example.com"
        tls_skip_verify          = true
        address_mode             = "host"
        success_before_passing   = 2
        failures_before_critical = 3
        failures_before_warning  = 1
        on_update                = "ignore_warnings"

        header {
          Authorization = ["Bearer xyz"]
          X-Trace       = ["1", "2"]
        }

        check_restart {
          limit = 2
          grace = "30s"
        }
      }

      check {
        name         = "grpc"
        type         = "grpc"
        port         = "grpc"
        grpc_service = "health.v1"
        grpc_use_tls = true
        interval     = "10s"
        timeout      = "2s"
        advertise    = "10.1.2.3"
      }

      check {
        name      = "script"
        type      = "script"
        task      = "app"
        command   = "/bin/check"
        args      = ["--quick"]
        interval  = "1m"
        timeout   = "10s"
        on_update = "ignore"
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/full:1"
        ports = ["http", "grpc"]
      }
    }
  }
}
