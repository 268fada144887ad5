job "spread-out" {
  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
    weight    = 70
  }

  spread {
    attribute = "${node.datacenter}"
    weight    = 100

    target "dc1" {
      percent = 60
    }

    target "dc2" {
      percent = 40
    }
  }

  group "g" {
    count = 10

    affinity {
      attribute = "${meta.rack}"
      operator  = "set_contains_any"
      value     = "r1,r2"
      weight    = -50
    }

    spread {
      attribute = "${meta.rack}"
    }

    task "t" {
      driver = "docker"

      affinity {
        attribute = "${attr.cpu.arch}"
        value     = "arm64"
        weight    = 25
      }

      config {
        image = "busybox:1"
      }
    }
  }
}
