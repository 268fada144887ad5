# An example of a Consul Connect (service mesh) job: a counting API and a dashboard
# that reaches it through an upstream. Run it with `yurt job run connect.nomad.hcl`
# on clients with Consul, CNI plugins and a bridge network.
job "countdash" {
  # Spread the allocations over every datacenter; narrow this list to pin the job.
  datacenters = ["*"]

  # The API group runs the counting service, reachable only through the mesh.
  group "api" {
    # Bridge networking gives the group its own network namespace for the sidecar.
    network {
      mode = "bridge"
    }

    # The service the dashboard connects to; the sidecar proxy is injected for it.
    service {
      name = "count-api"
      port = "9001"

      connect {
        sidecar_service {}
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = "hashicorpdev/counter-api:v3"
      }
    }
  }

  # The dashboard group exposes port 9002 on the host and talks to the API through
  # a local upstream listener on port 8080.
  group "dashboard" {
    network {
      mode = "bridge"

      port "http" {
        static = 9002
        to     = 9002
      }
    }

    service {
      name = "count-dashboard"
      port = "http"

      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "count-api"
              local_bind_port  = 8080
            }
          }
        }
      }
    }

    task "dashboard" {
      driver = "docker"

      # The upstream's address is published to the task as an environment variable.
      env {
        COUNTING_SERVICE_URL = "http://${NOMAD_UPSTREAM_ADDR_count_api}"
      }

      config {
        image = "hashicorpdev/counter-dashboard:v3"
      }
    }
  }
}
