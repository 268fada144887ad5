job "global-api" {
  multiregion {
    strategy {
      max_parallel = 1
      on_failure   = "fail_all"
    }

    region "west" {
      count       = 2
      datacenters = ["west-1"]
      node_pool   = "api"
      meta        = { tier = "primary" }
    }

    region "east" {
      count       = 1
      datacenters = ["east-1", "east-2"]

      meta {
        tier = "secondary"
      }
    }
  }

  group "api" {
    count = 0

    task "api" {
      driver = "docker"

      config {
        image = "example/api:1"
      }
    }
  }
}
