job "netdemo" {
  group "g" {
    network {
      mode     = "bridge"
      hostname = "netdemo-${NOMAD_ALLOC_INDEX}"

      port "http" {
        to           = 8080
        host_network = "public"
      }

      port "admin" {
        static           = 9000
        to               = -1
        host_network     = "private"
        ignore_collision = true
      }

      dns {
        servers  = ["1.1.1.1", "8.8.8.8"]
        searches = ["svc.local"]
        options  = ["ndots:2"]
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/net:1"
        ports = ["http", "admin"]
      }
    }
  }

  group "cni" {
    network {
      mode = "cni/mynet"

      cni {
        args = {
          IgnoreUnknown = "true"
          label         = "blue"
        }
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/net:1"
      }
    }
  }
}
