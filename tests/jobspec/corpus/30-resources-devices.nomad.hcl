job "gpu-train" {
  type = "batch"

  group "train" {
    task "train" {
      driver = "docker"

      config {
        image = "example/train:1"
      }

      resources {
        cores      = 4
        memory     = 8192
        memory_max = 16384
        secrets    = 10

        device "nvidia/gpu" {
          count = 2

          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "16 GiB"
          }

          affinity {
            attribute = "${device.model}"
            value     = "Tesla V100"
            weight    = 50
          }
        }

        device "fpga" {}

        numa {
          affinity = "require"
          devices  = ["nvidia/gpu"]
        }
      }
    }
  }
}
