job "placement" {
  constraint {
    attribute = "${attr.kernel.name}"
    operator  = "="
    value     = "linux"
  }

  constraint {
    attribute = "${attr.os.version}"
    version   = ">= 20.04"
  }

  constraint {
    attribute = "${attr.nomad.version}"
    semver    = ">= 1.8.0"
  }

  constraint {
    attribute = "${node.unique.name}"
    regexp    = "^web-[0-9]+$"
  }

  constraint {
    attribute    = "${meta.roles}"
    set_contains = "web,edge"
  }

  constraint {
    attribute        = "${meta.zones}"
    set_contains_any = "a,b"
  }

  constraint {
    attribute        = "${meta.features}"
    set_contains_all = "ssd,gpu"
  }

  constraint {
    distinct_hosts = true
  }

  group "g" {
    count = 4

    constraint {
      distinct_property = "${meta.rack}"
      value             = "2"
    }

    constraint {
      attribute = "${attr.cpu.numcores}"
      operator  = ">="
      value     = "4"
    }

    constraint {
      attribute = "${meta.maintenance}"
      operator  = "is_not_set"
    }

    task "t" {
      driver = "docker"

      constraint {
        attribute = "${attr.driver.docker.version}"
        operator  = "version"
        value     = ">= 24.0"
      }

      config {
        image = "busybox:1"
      }
    }
  }
}
